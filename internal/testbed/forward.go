package testbed

import (
	"io"
	"net"
)

// Forwarder accepts TCP connections on an address and relays each to a target, as a
// remote engine's TCP endpoint would: it lets a test reach the local engine through
// DOCKER_HOST=tcp://… on a loopback address other than 127.0.0.1.
type Forwarder struct {
	Addr     string
	listener net.Listener
}

// Forward listens on listenAddr (host:0 for any port) and relays to network/address.
func Forward(listenAddr, network, address string) (*Forwarder, error) {
	l, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return nil, err
	}
	return ForwardFrom(l, network, address), nil
}

// ForwardFrom relays each connection accepted on l to network/address, dialled from this
// process's own network namespace: with l opened in another namespace, the relay crosses
// from that namespace into this one. It owns l: Close closes it.
func ForwardFrom(l net.Listener, network, address string) *Forwarder {
	return ForwardFunc(l, func() (net.Conn, error) { return net.Dial(network, address) })
}

// ForwardFunc relays each connection accepted on l to a connection dial makes. It owns l:
// Close closes it.
func ForwardFunc(l net.Listener, dial func() (net.Conn, error)) *Forwarder {
	f := &Forwarder{Addr: l.Addr().String(), listener: l}
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return // closed
			}
			go func() {
				defer in.Close()
				out, err := dial()
				if err != nil {
					return
				}
				defer out.Close()
				done := make(chan struct{}, 2)
				relay := func(dst, src net.Conn) { _, _ = io.Copy(dst, src); done <- struct{}{} }
				go relay(out, in)
				go relay(in, out)
				<-done // either side closed: end both
			}()
		}
	}()
	return f
}

// Close stops accepting; connections in flight end with their peers.
func (f *Forwarder) Close() { _ = f.listener.Close() }
