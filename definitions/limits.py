"""Size and range limits of a process definition, shared by the schemas and their tests."""

from datetime import timedelta

# Process and task names appear in URLs, Docker labels and file names.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
# PostgreSQL text cannot hold NUL and Docker rejects it in commands and environments.
NO_NUL_PATTERN = r"^[^\u0000]*$"
URL_PATTERN = r"^https?://[^\s\u0000]+$"

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
