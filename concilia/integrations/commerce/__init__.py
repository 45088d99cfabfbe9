"""Commerce connectors: implementations of core.ports.OrderLookup for shops and ERPs."""
