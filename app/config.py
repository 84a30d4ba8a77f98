"""Gnomon's settings: one table of keys, defaults, types and meanings, checked once at start-up.

Each key is read from, in order: the table's default, an environment variable
`GNOMON_<KEY>`, then the mapping given to `create_app`. `validate` turns the
result into typed values or one `ConfigError` listing every problem in plain
sentences. `SETTINGS` is also what the README's configuration section shows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from executor.log_files import parse_size
from scheduler.notify.destinations import parse_networks

MIB = 1024 * 1024

Check = Callable[[object], str | None]


class ConfigError(ValueError):
    """The configuration cannot be used; the message says every reason in sentences."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("Invalid configuration:\n" + "\n".join(f"- {p}" for p in problems))
        self.problems = problems


def at_least(minimum: float) -> Check:
    """A check that a number is `minimum` or more."""
    return lambda value: None if value >= minimum else f"must be at least {minimum}"


def between(low: int, high: int) -> Check:
    """A check that an integer lies in [low, high]."""
    return lambda value: None if low <= value <= high else f"must be between {low} and {high}"


def one_of(*choices: str) -> Check:
    """A check that a string is one of `choices`."""
    return lambda value: None if value in choices else f"must be one of {', '.join(choices)}"


def url_with_scheme(*schemes: str) -> Check:
    """A check that a string is a URL with one of `schemes`, or empty (meaning: derive it)."""
    pattern = re.compile(rf"^({'|'.join(schemes)})://\S+$")
    return lambda value: (
        None
        if not value or pattern.match(value)
        else (f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}")
    )


def _networks_problem(value: str) -> str | None:
    """Why `value` is not a comma-separated list of addresses or CIDR networks, or None."""
    try:
        parse_networks(value)
    except ValueError as error:
        return f"must list addresses or CIDR networks separated by commas ({error})"
    return None


def _log_size_problem(value: str) -> str | None:
    """Why `value` is not an engine log size (`64m`, `512k`, `1g`) above 0, or None; empty is."""
    try:
        size = parse_size(value) if value else 1
    except ValueError:
        size = 0
    return None if size > 0 else "must be a size above 0 such as 64m, 512k or 1g, or empty"


def split_paths(value: str) -> tuple[str, ...]:
    """The paths of a comma-separated list, blanks dropped."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class Setting:
    """One configuration key: its default, Python type, meaning and an optional check."""

    key: str
    default: object
    type: type
    description: str
    check: Check | None = None
    secret: bool = False  # its value is never repeated in a message

    @property
    def env_var(self) -> str:
        """The environment variable that sets this key."""
        return f"GNOMON_{self.key}"


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "DATABASE_URL", "sqlite:///var/gnomon.db", str,
        "Database to use: sqlite:///relative/path, sqlite:////absolute/path or "
        "postgresql://user:password@host:port/name. A relative SQLite path is relative "
        "to the working directory.",
        url_with_scheme("sqlite", "postgresql", "postgres"),
    ),
    Setting("HOST", "127.0.0.1", str, "Address `gnomon serve` listens on."),
    Setting("PORT", 8080, int, "TCP port `gnomon serve` listens on.", between(1, 65535)),
    Setting(
        "API_TOKENS", "", str,
        "API tokens as `name:scope:sha256hex` entries separated by commas (scope read, write "
        "or admin; make one with `gnomon token create`). With none here or in API_TOKENS_FILE "
        "the API needs no token and `gnomon serve` listens on loopback only.",
    ),
    Setting(
        "API_TOKENS_FILE", "", str,
        "File of more API token entries, one `name:scope:sha256hex` a line (`#` starts a "
        "comment); read at start-up.",
    ),
    Setting(
        "METRICS_TOKEN_SHA256", "", str,
        "SHA-256 (hex) of a token that may read /_internal_/metrics only (`gnomon token "
        "metrics`). Once this or an API token is set, metrics need this token or an API token.",
        lambda value: None if re.fullmatch(r"([0-9a-fA-F]{64})?", value) else (
            "must be 64 hexadecimal digits"
        ),
    ),
    Setting(
        "INSECURE", False, bool,
        "Let `gnomon serve` listen beyond loopback with no API tokens, open to anyone who can "
        "reach it (as `--insecure`); it warns at every start.",
    ),
    Setting(
        "PUBLIC_URL", "", str,
        "Base URL task containers use to call back (log entries, metadata, succeed/fail). "
        "Empty means http://HOST:PORT, which containers on a bridge network usually cannot "
        "reach: set it to an address they can.",
        url_with_scheme("http", "https"),
    ),
    Setting(
        "EXECUTOR", "docker", str,
        "Container backend: `docker` (the Docker Engine), `swarm` (one service per attempt "
        "on a Docker Swarm cluster, see docs/swarm.md) or `fake` (in-memory, for tests).",
        one_of("docker", "fake", "swarm"),
    ),
    Setting(
        "INSTANCE", "default", str,
        "Name of this Gnomon instance, unique among the live instances sharing a database "
        "(a second start under a live name is refused); it owns the attempts it starts and "
        "labels their containers.",
        lambda value: None if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", value) else (
            "must be 1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit"
        ),
    ),
    Setting(
        "INSTANCE_LEASE_SECONDS", 30.0, float,
        "Seconds an instance's lease lasts without a heartbeat (renewed every sixth of it). "
        "Another instance adopts the attempts of an instance silent this long; an instance "
        "name held by a live lease cannot be started twice.",
        at_least(2),
    ),
    Setting(
        "DOCKER_HOST", "", str,
        "Docker Engine address (e.g. unix:///var/run/docker.sock); empty means the "
        "DOCKER_HOST environment variable or the local default.",
    ),
    Setting(
        "DOCKER_NETWORK_MODE", "bridge", str,
        "Docker network mode of task containers (bridge, host, or a network name).",
        lambda value: None if value else "must not be empty",
    ),
    Setting(
        "DOCKER_LOG_MAX_SIZE", "64m", str,
        "Size at which a task container's json-file log file rotates (`max-size`, e.g. 64m; "
        "two files kept) when the engine logs to json-file; empty keeps the engine's own "
        "log options. The output is read again after the exit unless the live read reached "
        "its end in a log file that cannot have rotated, so no line the live read missed is "
        "lost; 64m spares that second read to outputs within the default cap.",
        _log_size_problem,
    ),
    Setting(
        "ALLOWED_BIND_PATHS", "", str,
        "Host directories (absolute, separated by commas) under which a task may bind-mount "
        "a host path; empty allows none. Paths are resolved (symlinks, `..`) before the "
        "check; the Docker socket is never allowed.",
        lambda value: None if all(p.startswith("/") for p in split_paths(value)) else (
            "must list absolute paths separated by commas"
        ),
    ),
    Setting(
        "SWARM_MANAGER", "", str,
        "Swarm executor: Docker API address of a swarm manager (e.g. tcp://manager:2376, TLS "
        "from DOCKER_TLS_VERIFY and DOCKER_CERT_PATH); empty means DOCKER_HOST or the local "
        "engine.",
    ),
    Setting(
        "SWARM_NETWORKS", "", str,
        "Swarm executor: networks every task service joins, separated by commas (an "
        "attachable overlay network, or `host`); empty means none but the default.",
        lambda value: None if re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9_.-]*(,|$))*", value) else (
            "must be network names separated by commas"
        ),
    ),
    Setting(
        "MAX_RUNNING_CONTAINERS", 16, int,
        "Most task containers running at once; further attempts wait as `pending`.",
        at_least(1),
    ),
    Setting(
        "LOG_CAP_BYTES", 10 * MIB, int,
        "Most bytes of container output stored per attempt; the rest is dropped with a note.",
        at_least(0),
    ),
    Setting(
        "KILL_GRACE_SECONDS", 10, int,
        "Seconds between SIGTERM and SIGKILL when a container is killed.",
        at_least(0),
    ),
    Setting(
        "KEEP_FAILED_CONTAINERS", False, bool,
        "Keep the containers of failed attempts for inspection instead of removing them.",
    ),
    Setting(
        "PULL_TIMEOUT_SECONDS", 120, int,
        "Seconds an image pull may take before the attempt fails.",
        at_least(1),
    ),
    Setting(
        "RECONCILE_INTERVAL_SECONDS", 30.0, float,
        "Seconds between checks that the containers the database believes running still are.",
        at_least(1),
    ),
    Setting(
        "TICK_SECONDS", 5.0, float,
        "Seconds between scheduler passes (due fires, waiting attempts, timeouts).",
        at_least(0.1),
    ),
    Setting(
        "ON_TIME_SECONDS", 60.0, float,
        "A fire that starts later than this after its time counts as missed (the service "
        "was down) and follows the definition's misfire_policy.",
        at_least(1),
    ),
    Setting(
        "MAX_CATCH_UP_RUNS", 10, int,
        "Most missed runs a `run_all` misfire policy starts when the definition sets no "
        "max_catch_up_runs.",
        at_least(1),
    ),
    Setting(
        "SCHEDULER_ENABLED", True, bool,
        "Run the scheduler loop in `gnomon serve`; false serves the API only "
        "(manual triggers still create runs).",
    ),
    Setting(
        "MAX_RECORDS_DEFAULT", 100, int,
        "Most items /api/processes and /api/tasks return when the request gives no "
        "max_records or limit.",
        at_least(1),
    ),
    Setting(
        "MAX_CONTENT_LENGTH", 1 * MIB, int,
        "Largest request body accepted, in bytes; larger ones get 413.",
        at_least(1024),
    ),
    Setting(
        "MAX_CALLBACK_ENTRIES", 1000, int,
        "Most entries one log_entries or metadata callback may carry; more get 400.",
        at_least(1),
    ),
    Setting(
        "SERVE_THREADS", 16, int,
        "Worker threads of the waitress server started by `gnomon serve`; must exceed "
        "LOG_STREAMS_MAX by at least 4, so that open log streams never starve the API.",
        at_least(8),
    ),
    Setting(
        "SERVE_CONNECTIONS", 500, int,
        "Most client connections `gnomon serve` keeps open at once; past it, new ones wait "
        "to be accepted until one closes (an idle keep-alive connection closes after 120 s). "
        "A console page holds one or two, a log stream one, a task callback one.",
        at_least(10),
    ),
    Setting(
        "LOG_STREAMS_MAX", 8, int,
        "Most log streams (`/api/tasks/{id}/log_stream`, the console's live logs) open at "
        "once; each holds a server thread. One more gets 503 with Retry-After.",
        at_least(1),
    ),
    Setting(
        "LOG_STREAM_HEARTBEAT_SECONDS", 10.0, float,
        "Seconds of silence after which a log stream sends a heartbeat comment.",
        at_least(0.05),
    ),
    Setting(
        "SHUTDOWN_GRACE_SECONDS", 5.0, float,
        "Seconds `gnomon serve`, told to stop, lets requests in flight finish; it stops "
        "accepting new ones at once and leaves task containers running for the next start.",
        at_least(0),
    ),
    Setting(
        "SMTP_HOST", "", str,
        "SMTP server that sends notification email; empty means email notifications cannot "
        "be sent (each is retried, then given up with that reason).",
    ),
    Setting("SMTP_PORT", 25, int, "Port of the SMTP server.", between(1, 65535)),
    Setting(
        "SMTP_SECURITY", "starttls", str,
        "How the SMTP connection is encrypted: `none`, `starttls` or `ssl` (TLS from the "
        "start, usually port 465).",
        one_of("none", "starttls", "ssl"),
    ),
    Setting("SMTP_USER", "", str, "User to log in to the SMTP server as; empty: no login."),
    Setting(
        "SMTP_PASSWORD", "", str,
        "Password of SMTP_USER; never logged nor shown.",
    ),
    Setting("SMTP_FROM", "gnomon@localhost", str, "Sender address of notification email."),
    Setting(
        "NOTIFY_ALLOWED_NETWORKS", "", str,
        "Addresses or CIDR networks (comma-separated) that webhook and PagerDuty URLs of "
        "definitions may reach besides public addresses; loopback, private and link-local "
        "ones are refused unless listed. Checked on the resolved address at send time.",
        _networks_problem,
    ),
    Setting(
        "NOTIFY_TIMEOUT_SECONDS", 10.0, float,
        "Seconds a notification's connection or answer may take before the try fails.",
        at_least(0.1),
    ),
    Setting(
        "NOTIFY_RETRY_BASE_SECONDS", 30.0, float,
        "Wait before retrying a failed notification; it doubles with each failed try.",
        at_least(0.1),
    ),
    Setting(
        "NOTIFY_RETRY_MAX_DELAY_SECONDS", 900.0, float,
        "Longest wait between two tries of a notification.",
        at_least(1),
    ),
    Setting(
        "NOTIFY_RETRY_FOR_SECONDS", 14400.0, float,
        "How long after its run ended a notification is retried before it is given up, "
        "with the last error recorded (at least an hour).",
        at_least(3600),
    ),
    Setting(
        "NOTIFY_WORKERS", 2, int,
        "Threads delivering notifications, apart from the scheduler's; a hanging receiver "
        "holds up one of them for at most the timeout.",
        between(1, 32),
    ),
    Setting(
        "SECRETS_KEY", "", str,
        "Fernet key that encrypts secret environment values of definitions at rest (make one "
        "with `python3 -c 'from cryptography.fernet import Fernet; "
        "print(Fernet.generate_key().decode())'`). Without it a definition with a secret "
        "value is refused. "
        "Keep it: stored secrets cannot be read without it.",
        lambda value: None if re.fullmatch(r"([A-Za-z0-9_-]{43}=)?", value) else (
            "must be a Fernet key: 44 characters of url-safe base64"
        ),
        secret=True,
    ),
    Setting(
        "PULL_INTERVAL_SECONDS", 300.0, float,
        "Images of tasks with pull_policy `always` (the default for tag latest) are pulled at "
        "most once per this many seconds per image.",
        at_least(0),
    ),
    Setting(
        "RETENTION_DAYS", 0, int,
        "Days finished runs (with their attempts, log entries and metadata) are kept; a "
        "definition's retention_days overrides it. 0 keeps them forever.",
        at_least(0),
    ),
    Setting(
        "RETENTION_KEEP_RUNS", 10, int,
        "The newest this many runs of each definition are kept whatever their age.",
        at_least(0),
    ),
    Setting(
        "AUDIT_RETENTION_DAYS", 0, int,
        "Days audit events are kept; 0 keeps them forever.",
        at_least(0),
    ),
    Setting(
        "RETENTION_INTERVAL_SECONDS", 3600.0, float,
        "Seconds between pruning passes (when RETENTION_DAYS or a definition's retention_days "
        "or AUDIT_RETENTION_DAYS is set).",
        at_least(1),
    ),
    Setting(
        "RETENTION_BATCH", 50, int,
        "Runs deleted per transaction while pruning; small batches keep write locks short.",
        at_least(1),
    ),
    Setting(
        "LOG_LEVEL", "INFO", str,
        "Logging level of `gnomon serve` (DEBUG, INFO, WARNING, ERROR).",
        one_of("DEBUG", "INFO", "WARNING", "ERROR"),
    ),
)  # fmt: skip

BY_KEY: dict[str, Setting] = {setting.key: setting for setting in SETTINGS}

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}


def defaults() -> dict[str, object]:
    """Every key with its default value."""
    return {setting.key: setting.default for setting in SETTINGS}


def markdown_table() -> str:
    """The settings as a Markdown table, for the README's configuration section."""
    rows = ["| Environment variable | Default | Meaning |", "|---|---|---|"]
    for setting in SETTINGS:
        default = "(empty)" if setting.default == "" else f"`{setting.default}`"
        rows.append(f"| `{setting.env_var}` | {default} | {setting.description} |")
    return "\n".join(rows) + "\n"


def validate(config: Mapping[str, object]) -> dict[str, object]:
    """The typed values of every key in `config`; raises ConfigError naming each bad one."""
    values: dict[str, object] = {}
    problems: list[str] = []
    for setting in SETTINGS:
        try:
            values[setting.key] = _typed(setting, config.get(setting.key, setting.default))
        except ValueError as error:
            problems.append(str(error))
    if not problems and values["SERVE_THREADS"] < values["LOG_STREAMS_MAX"] + 4:
        problems.append(
            f"SERVE_THREADS ({values['SERVE_THREADS']}) must be at least LOG_STREAMS_MAX + 4 "
            f"({values['LOG_STREAMS_MAX'] + 4}), so that log streams never take every thread."
        )
    if problems:
        raise ConfigError(problems)
    if not values["PUBLIC_URL"]:
        values["PUBLIC_URL"] = f"http://{values['HOST']}:{values['PORT']}"
    return values


def _typed(setting: Setting, raw: object) -> object:
    """`raw` converted to the setting's type and checked; ValueError with a sentence if not."""
    value = _convert(setting, raw)
    problem = setting.check(value) if setting.check else None
    if problem:
        shown = "the value given" if setting.secret else repr(raw)
        raise ValueError(f"{setting.key} (env {setting.env_var}) {problem}, not {shown}.")
    return value


def _convert(setting: Setting, raw: object) -> object:
    """Coerce `raw` (a default, a parsed environment value, or a test value) to the type."""
    wanted = setting.type
    if wanted is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str | int) and str(raw).strip().lower() in TRUE_WORDS | FALSE_WORDS:
            return str(raw).strip().lower() in TRUE_WORDS
    elif wanted is int and not isinstance(raw, bool):
        if isinstance(raw, int) or (isinstance(raw, str) and re.fullmatch(r"\s*-?\d+\s*", raw)):
            return int(raw)
    elif wanted is float and isinstance(raw, int | float | str) and not isinstance(raw, bool):
        try:
            return float(raw)
        except ValueError:
            pass
    elif isinstance(raw, str | int | float) and not isinstance(raw, bool):
        return str(raw)
    return _fail(setting, raw)


def _fail(setting: Setting, raw: object) -> object:
    """Raise the sentence saying `raw` is not of the setting's type."""
    kind = {bool: "true or false", int: "a whole number", float: "a number"}.get(
        setting.type, "a string"
    )
    raise ValueError(f"{setting.key} (env {setting.env_var}) must be {kind}, not {raw!r}.")
