defmodule Keyring.Cluster.DiscoveryTest do
  use ExUnit.Case, async: false
  @moduletag :cluster
  @moduletag timeout: 120_000

  alias Keyring.Test.Peers
  import Keyring.Test.Eventually

  defp node_name(prefix, i, suffix), do: :"#{prefix}#{i}_#{suffix}@127.0.0.1"

  test "Epmd strategy connects a static host list and reconnects a host that comes back" do
    suffix = "#{System.pid()}_#{System.unique_integer([:positive])}"
    hosts = for i <- 1..3, do: node_name(:epmd, i, suffix)
    topo = [keyring: [strategy: Cluster.Strategy.Epmd, config: [hosts: hosts, interval: 200]]]
    opts = [coordinator: [heartbeat: 300], instance_opts: [cluster_topologies: topo]]
    [a, b, c] = peers = for i <- 1..3, do: Peers.start(:"epmd#{i}_#{suffix}", opts)
    on_exit(fn -> Peers.stop_all(peers) end)

    want = Enum.sort(hosts)
    eventually(fn -> Enum.all?(peers, &(Peers.active_nodes(&1) == want)) end, 30_000, "epmd mesh")

    Peers.kill(c)
    eventually(fn -> Peers.active_nodes(a) == Enum.sort([a.node, b.node]) end, 10_000, "c down")
    c2 = Peers.start(c.name, Keyword.put(opts, :dir, c.dir))
    on_exit(fn -> Peers.stop(c2) end)

    eventually(
      fn -> Enum.all?([a, b, c2], &(Peers.active_nodes(&1) == want)) end,
      30_000,
      "c back"
    )
  end

  test "Gossip strategy discovers nodes over loopback multicast" do
    suffix = "#{System.pid()}_#{System.unique_integer([:positive])}"
    port = 30_000 + :rand.uniform(10_000)

    config = [
      secret: "peer-test-secret-0123456789",
      port: port,
      multicast_if: {127, 0, 0, 1},
      multicast_addr: {239, 255, 7, 7},
      interval: 300
    ]

    topo = [lan: [strategy: Keyring.Cluster.Strategy.Gossip, config: config]]
    opts = [coordinator: [heartbeat: 300], instance_opts: [cluster_topologies: topo]]
    peers = for i <- 1..3, do: Peers.start(:"gossip#{i}_#{suffix}", opts)
    on_exit(fn -> Peers.stop_all(peers) end)
    want = peers |> Enum.map(& &1.node) |> Enum.sort()

    eventually(
      fn -> Enum.all?(peers, &(Peers.active_nodes(&1) == want)) end,
      30_000,
      "gossip mesh"
    )
  end
end
