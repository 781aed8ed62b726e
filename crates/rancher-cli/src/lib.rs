//! rancherctl internals. (Scaffold; filled in by its issue.)
