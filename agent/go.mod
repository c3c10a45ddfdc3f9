module orch/agent

go 1.26.0

require (
	github.com/coder/websocket v1.8.15
	go.etcd.io/bbolt v1.5.0
	golang.org/x/crypto v0.59.0
	gopkg.in/yaml.v3 v3.0.1
)

require golang.org/x/sys v0.50.0 // indirect
