"""Size and range limits of a process definition, shared by the schemas and their tests."""

from datetime import timedelta

# Process and task names appear in URLs, Docker labels and file names.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
# PostgreSQL text cannot hold NUL and Docker rejects it in commands and environments.
NO_NUL_PATTERN = r"^[^\u0000]*$"
URL_PATTERN = r"^https?://[^\s\u0000]+$"
# A Standard Webhooks secret: `whsec_` and the (padded) base64 of 24 to 68 bytes.
WEBHOOK_SECRET_PATTERN = (
    r"^whsec_(?:[A-Za-z0-9+/]{4}){8,22}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
)

# Sundial's API Builder `integer` is a 32-bit Int; nothing larger ever came from its clients,
# and the bound keeps timedelta arithmetic in the scheduler far from overflow.
MAX_INT = 2**31 - 1
MAX_RETENTION_DAYS = 100 * 366  # a century: past it, datetime arithmetic overflows

MAX_TASKS = 200
MAX_ATTEMPTS = 1000
MAX_ENV_VARS = 200
MAX_ENV_VALUE_CHARS = 32 * 1024
MAX_COMMAND_ITEMS = 1000
MAX_COMMAND_ITEM_CHARS = 64 * 1024
MAX_LOG_PATHS = 100
# A swarm placement constraint: `node.labels.disk==ssd`, `node.role!=manager`, `engine.labels.x==y`.
PLACEMENT_PATTERN = r"^(node|engine)\.[A-Za-z0-9_.-]+ *(==|!=) *[^\s=!][^\x00\s]*$"
MAX_PLACEMENT = 20
MAX_PLACEMENT_CHARS = 256
MAX_LOG_PATH_CHARS = 4096
MAX_DEPENDENCIES = MAX_TASKS
MAX_NOTIFICATIONS = 50
MAX_IMAGE_CHARS = 512
MAX_TAG_CHARS = 128
MAX_CRON_FIELD_CHARS = 100
MAX_TIME_ZONE_CHARS = 64
MAX_DESCRIPTION_CHARS = 10_000
MAX_TEXT_CHARS = 2048
MIN_MEMORY_MIB = 6  # Docker refuses a memory limit below 6 MiB.
MIN_CPU_SHARES = 2  # Docker's smallest cpu-shares value.
MIN_BACKOFF_EXPONENT = 1.0

# A retry never waits longer than this, however large the exponent.
MAX_RETRY_DELAY = timedelta(days=1)
# next_fire_time gives up (DefinitionError) rather than search further than this.
MAX_SEARCH_YEARS = 50

# Container options, run parameters and task outputs (docs/api.md has the rules).
MAX_MOUNTS = 32
MAX_LABELS = 64
MAX_LABEL_VALUE_CHARS = 4096
MAX_CAP_DROP = 64
MAX_PATH_CHARS = 4096
# An absolute path without a `..` segment (a bind source is also resolved at check time).
ABSOLUTE_PATH_PATTERN = r"^(?!.*/\.\.(/|$))/[^\u0000]*$"
VOLUME_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
# A network name or mode; `container:<id>` (another container's namespaces) does not match.
NETWORK_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
USER_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,63})?$"
LABEL_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,254}$"
CAPABILITY_PATTERN = r"^[A-Z][A-Z_]{0,63}$"
RESERVED_LABEL_PREFIX = "gnomon."
MAX_PARAMETERS = 64
PARAMETER_NAME_PATTERN = ENV_NAME_PATTERN
MAX_OUTPUTS = 32  # named outputs one attempt may publish
MAX_OUTPUT_CHARS = 64 * 1024  # characters of one output's value
OUTPUT_NAME_PATTERN = r"^[A-Za-z0-9_]{1,64}$"
