package server

import (
	"fmt"
	"net"
	"strings"
)

// listener is one address a node listens on.
type listener struct {
	what, addr string
}

// listeners returns what cfg makes the node listen on: HTTP, and unless the
// node is standalone or runs on an injected transport, gossip and fills.
func (c RunConfig) listeners() []listener {
	ls := []listener{{"HTTP", c.HTTPAddr}}
	n := c.Node
	if n.Standalone {
		return ls
	}
	bind := n.BindAddr
	if bind == "" {
		bind = "0.0.0.0" // node.Config's default
	}
	if n.Transport == nil {
		ls = append(ls, listener{"gossip", net.JoinHostPort(bind, fmt.Sprint(n.BindPort))})
	}
	if !n.DisableOwnerFills && n.FillListener == nil {
		fill := n.FillAddr
		if fill == "" {
			fill = net.JoinHostPort(bind, "0")
		}
		ls = append(ls, listener{"fill", fill})
	}
	return ls
}

// loopback reports whether addr (host:port) binds loopback only. An empty
// host, an unspecified address (0.0.0.0, ::) and any name other than
// localhost count as reachable from the network.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// hasKey reports whether cfg's node encrypts gossip and authenticates fills.
func (c RunConfig) hasKey() bool { return len(c.Node.SecretKey) > 0 || len(c.Node.Keyring) > 0 }

// security applies the secure-by-default rules: a node whose gossip, fill
// or HTTP listener binds beyond loopback needs a key, and one whose HTTP
// listener does needs API tokens. It returns the error that refuses the
// start or, with Insecure, the warnings naming what is exposed.
func (c RunConfig) security() (warnings []string, err error) {
	var exposed []string
	httpExposed := false
	for _, l := range c.listeners() {
		if !loopback(l.addr) {
			exposed = append(exposed, l.what+" "+l.addr)
			httpExposed = httpExposed || l.what == "HTTP"
		}
	}
	var problems []string
	if !c.hasKey() && len(exposed) > 0 {
		verb := "listens"
		if len(exposed) > 1 {
			verb = "listen"
		}
		problems = append(problems, fmt.Sprintf("%s %s beyond loopback without a key: gossip and fills travel in clear and anyone on the network can join, forge invalidations or read values (give --secret-key-file)",
			strings.Join(exposed, ", "), verb))
	}
	if httpExposed && len(c.Tokens) == 0 {
		problems = append(problems, fmt.Sprintf("HTTP %s listens beyond loopback without API tokens: anyone on the network can write and invalidate (give --api-token-file)", c.HTTPAddr))
	}
	if len(problems) == 0 {
		return nil, nil
	}
	if c.Insecure {
		return problems, nil
	}
	return nil, fmt.Errorf("refusing to start (%w): %s; or bind to 127.0.0.1, or pass --insecure on a network you trust", ErrInsecure, strings.Join(problems, "; "))
}
