//! NAT public pool and port-block allocation (I/O-free).
