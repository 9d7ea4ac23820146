"""The two connections every strategy has: the runtime role (what the web server uses) and the
owner role (migrations, provisioning, cross-tenant work)."""

RUNTIME_ALIAS = "default"
OWNER_ALIAS = "owner"
