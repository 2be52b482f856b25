"""The `kamioi` console script: operator commands over the product (jobs, api, kamioi) and the local stack."""
