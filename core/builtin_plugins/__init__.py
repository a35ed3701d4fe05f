"""The plugins that ship with the app: attendance log, snapshot saver and webhook (see docs/plugins.md)."""
