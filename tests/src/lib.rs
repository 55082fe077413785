//! Test harness: network namespaces, veth pairs, bridges and processes inside them.
