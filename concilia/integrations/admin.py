"""The integrations' admin pages, defined in their sub-packages."""

from concilia.integrations.mail import admin as mail_admin  # noqa: F401 - registers
from concilia.integrations.telegram import admin as telegram_admin  # noqa: F401 - registers
from concilia.integrations.webhooks import admin as webhooks_admin  # noqa: F401 - registers
