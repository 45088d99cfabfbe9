"""CRM connectors: implementations of `core.ports.CustomerDirectory`, and the push job."""
