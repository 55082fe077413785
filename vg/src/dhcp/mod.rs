//! DHCPv4 server engine (I/O-free).
