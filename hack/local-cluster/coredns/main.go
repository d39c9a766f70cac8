// Command coredns is the local cluster's DNS server: CoreDNS with only the
// plugins that cluster needs (hack/local-cluster/dns.sh). It answers for
// cluster.local and the reverse zones from the API (the kubernetes plugin)
// and knows no other zone: there is no forward plugin in this binary, so no
// query can leave the machine, whatever the Corefile says; a name outside
// cluster.local gets REFUSED.
package main

import (
	"github.com/coredns/coredns/coremain"

	// The plugins of this build; the Corefile can name no others.
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() {
	coremain.Run()
}
