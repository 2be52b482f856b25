"""What Upstash documents as unsupported, refused before it reaches redis-server.

Sources (Upstash's own docs): the command list https://upstash.com/docs/redis/overall/rediscompatibility,
the Server group https://upstash.com/docs/redis/commands/server/overview (ACL, COMMAND, CONFIG GET,
CONFIG SET, DBSIZE, FLUSHALL, FLUSHDB, INFO, MONITOR, TIME: every other server command is absent),
https://upstash.com/docs/redis/commands/server/config-get and .../config-set (only
``notify-keyspace-events`` is readable or writable), .../acl-setuser (no ``nopass``, no plain-text or
hashed passwords, the ``default`` user is immutable) and .../flushdb (one logical database).
FLUSHALL and FLUSHDB are documented as supported, so they run.
"""

from fnmatch import fnmatchcase

Command = list[bytes]

# Server administration Upstash does not offer (absent from its Server group), replication and
# persistence control, and the multi-database and cluster commands of a server that has one logical
# database and no cluster API.
UNSUPPORTED_COMMANDS = frozenset(
    {
        b"BGREWRITEAOF", b"BGSAVE", b"DEBUG", b"FAILOVER", b"LASTSAVE", b"LATENCY", b"LOLWUT",
        b"MEMORY", b"MODULE", b"REPLCONF", b"REPLICAOF", b"RESTORE-ASKING", b"ROLE", b"SAVE",
        b"SHUTDOWN", b"SLAVEOF", b"SLOWLOG", b"SWAPDB", b"MIGRATE", b"MOVE", b"CLUSTER", b"READONLY",
        b"READWRITE", b"ASKING",
    }
)  # fmt: skip

# ACL subcommands that only read. SETUSER is documented with rules a local client cannot meet (its only
# accepted password is a token from Upstash's ACL GENTOKEN, which this proxy does not mint), so it and
# the other writers (DELUSER, LOAD, SAVE, GENTOKEN, RESTTOKEN) are refused.
READ_ONLY_ACL_SUBCOMMANDS = frozenset(
    {b"CAT", b"DRYRUN", b"GENPASS", b"GETUSER", b"HELP", b"LIST", b"LOG", b"USERS", b"WHOAMI"}
)

CONFIG_PARAMETER = b"notify-keyspace-events"
# CONFIG GET of a pattern that matches nothing Upstash exposes must answer an empty list, as Upstash
# does; asking redis-server for a name it does not have gives exactly that.
_NO_PARAMETER = b"kamioi-proxy-no-such-parameter"


class Unsupported(ValueError):
    """A command Upstash documents as unavailable (answered ``{"error": "ERR ..."}``, HTTP 400)."""


def enforce(command: Command) -> Command:
    """The command as redis-server should run it, or Unsupported."""
    name = command[0].upper()
    if name in UNSUPPORTED_COMMANDS:
        raise Unsupported(f"ERR Command is not available: '{command[0].decode(errors='replace')}'")
    if name == b"CONFIG":
        return _config(command)
    if name == b"ACL":
        subcommand = command[1].upper() if len(command) > 1 else b""
        if subcommand not in READ_ONLY_ACL_SUBCOMMANDS:
            raise Unsupported(f"ERR Command is not available: 'ACL {subcommand.decode(errors='replace')}'")
    return command


def _config(command: Command) -> Command:
    subcommand = command[1].upper() if len(command) > 1 else b""
    if subcommand == b"GET" and len(command) > 2:
        patterns = [pattern.decode(errors="replace").lower() for pattern in command[2:]]
        exposed = any(fnmatchcase(CONFIG_PARAMETER.decode(), pattern) for pattern in patterns)
        return [command[0], command[1], CONFIG_PARAMETER if exposed else _NO_PARAMETER]
    if subcommand == b"SET":
        names = command[2::2]
        if not names or any(name.lower() != CONFIG_PARAMETER for name in names):
            raise Unsupported("ERR CONFIG SET only accepts notify-keyspace-events")
        return command
    raise Unsupported(f"ERR Command is not available: 'CONFIG {subcommand.decode(errors='replace')}'")
