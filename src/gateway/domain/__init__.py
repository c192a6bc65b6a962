"""The domain: value objects, aggregates, commands and events. Standard library only."""
