//! AF_XDP sockets, UMEM and the redirect program (shared by gen, sink and dut).
