"""Run artifacts every layer may use, without Ray: storage locations (local or object stores)."""
