package gossiptest

import (
	"fmt"
	"io"
	"log"
	"strconv"

	"github.com/hashicorp/memberlist"
)

// Loopback opens a real memberlist transport on 127.0.0.1 (UDP and TCP, a
// free port) and wraps it with n's rules: a real cluster on loopback whose
// packets can still be dropped, duplicated, delayed and partitioned. Its
// address is Addr(). Shut it down with Shutdown (the node's memberlist does).
func (n *Network) Loopback() (*Transport, error) {
	inner, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{"127.0.0.1"},
		BindPort:  0,
		Logger:    log.New(io.Discard, "", 0),
	})
	if err != nil {
		return nil, fmt.Errorf("gossiptest: loopback transport: %w", err)
	}
	return n.Wrap("127.0.0.1:"+strconv.Itoa(inner.GetAutoBindPort()), inner), nil
}
