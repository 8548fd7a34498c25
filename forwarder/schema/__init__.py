"""What a setting is and how one config mapping is read: leaf of the import graph, used by every layer."""
