"""Safe XML parsing and schema validation."""
