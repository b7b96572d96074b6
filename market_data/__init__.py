"""Historical prices behind one interface, whatever their source; see ``providers.build_providers``."""
