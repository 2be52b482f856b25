from kamioi.cli import main

main()
