// Command etcd is the upstream etcd server, built from its published Go module.
//
// etcd's own main package lives in a module whose go.mod carries relative replace
// directives, so `go install go.etcd.io/etcd/...@version` refuses it. This wrapper
// module pins the server module in go.mod and hands control to etcdmain, which is
// exactly what upstream's main does.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
