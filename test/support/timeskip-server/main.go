// A Temporal server (go.temporal.io/server v1.32.0, in memory, namespace "default") with workflow time skipping
// enabled (frontend.WorkflowTimeSkippingEnabled), for test/integration/gate-24h.test.ts; built and cached by
// test/support/timeskip-server-binary.ts. Prints "listening PORT" once it serves; SIGTERM stops it.
//
// Adapted from the Temporal CLI's internal/devserver/server.go (log.go and freeport.go are copied from the same
// package): The MIT License, Copyright (c) 2024 Temporal Technologies Inc. All rights reserved.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"math/rand"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
)

const localhost = "127.0.0.1"

func main() {
	port := flag.Int("port", 0, "frontend gRPC port (0: a free one)")
	namespace := flag.String("namespace", "default", "namespace to create")
	flag.Parse()
	if *port == 0 {
		*port = MustGetFreePort(localhost)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	level := &slog.LevelVar{}
	level.Set(slog.LevelWarn)
	tlog := slogLogger{log: logger, level: level}

	clusterName := "active"
	httpPort := MustGetFreePort(localhost)
	sqlConf := config.SQL{PluginName: sqliteplugin.PluginName, ConnectAttributes: map[string]string{"mode": "memory", "cache": "shared"}, DatabaseName: strconv.Itoa(rand.Intn(9999999))}
	nsConf, err := sqliteschema.NewNamespaceConfig(clusterName, *namespace, false, nil)
	must(err)
	must(sqliteschema.CreateNamespaces(&sqlConf, nsConf))

	var conf config.Config
	conf.Global.Membership.MaxJoinDuration = 30 * time.Second
	conf.Global.Membership.BroadcastAddress = localhost
	conf.Persistence.DefaultStore = "sqlite-default"
	conf.Persistence.VisibilityStore = "sqlite-default"
	conf.Persistence.NumHistoryShards = 1
	conf.Persistence.DataStores = map[string]config.DataStore{"sqlite-default": {SQL: &sqlConf}}
	conf.ClusterMetadata = &cluster.Config{
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{clusterName: {
			Enabled: true, InitialFailoverVersion: 1,
			RPCAddress:  fmt.Sprintf("%v:%v", localhost, *port),
			HTTPAddress: fmt.Sprintf("%v:%v", localhost, httpPort),
			ClusterID:   "orch-timeskip",
		}},
	}
	conf.DCRedirectionPolicy.Policy = "noop"
	svc := func(frontend bool) config.Service {
		var c config.Service
		c.RPC.BindOnIP = localhost
		if frontend {
			c.RPC.GRPCPort = *port
			c.RPC.HTTPPort = httpPort
		} else {
			c.RPC.GRPCPort = MustGetFreePort(localhost)
		}
		return c
	}
	conf.Services = map[string]config.Service{"frontend": svc(true), "history": svc(false), "matching": svc(false), "worker": svc(false)}
	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	conf.PublicClient.HostPort = fmt.Sprintf("%v:%v", localhost, *port)

	authorizer, err := authorization.GetAuthorizerFromConfig(&conf.Global.Authorization)
	must(err)
	claimMapper, err := authorization.GetClaimMapperFromConfig(&conf.Global.Authorization, tlog)
	must(err)
	hosts := map[primitives.ServiceName]static.Hosts{}
	for name, s := range map[primitives.ServiceName]string{primitives.FrontendService: "frontend", primitives.MatchingService: "matching", primitives.HistoryService: "history", primitives.WorkerService: "worker"} {
		hosts[name] = static.SingleLocalHost(fmt.Sprintf("%v:%v", localhost, conf.Services[s].RPC.GRPCPort))
	}
	dyn := dynamicconfig.StaticClient{
		dynamicconfig.WorkflowTimeSkippingEnabled.Key():  true,
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key(): 8096,
	}
	server, err := temporal.NewServer(
		temporal.WithConfig(&conf),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(tlog),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(dyn),
	)
	must(err)
	must(server.Start())
	fmt.Printf("listening %d\n", *port)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	server.Stop()
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
