defmodule Keyring.Cluster.PresenceTest do
  use ExUnit.Case, async: false
  @moduletag :cluster
  @moduletag timeout: 180_000

  alias Keyring.Test.Peers
  import Keyring.Test.Eventually

  @fast [heartbeat: 300, permdown_after: 60_000]

  defp converged?(peers) do
    want = peers |> Enum.map(& &1.node) |> Enum.sort()
    Enum.all?(peers, &(Peers.active_nodes(&1) == want))
  end

  for n <- [2, 3, 5] do
    test "#{n} nodes connected by hand converge on the same presence" do
      peers = Peers.start_many(:conv, unquote(n), coordinator: @fast)
      on_exit(fn -> Peers.stop_all(peers) end)
      Peers.connect_all(peers)
      eventually(fn -> converged?(peers) end, 30_000, "presence convergence")

      # Every node sees the same node ids and incarnations.
      views =
        for p <- peers,
            do:
              p
              |> Peers.presence()
              |> Enum.map(fn {id, e} -> {id, e.incarnation} end)
              |> Enum.sort()

      assert Enum.uniq(views) |> length() == 1
      assert length(hd(views)) == unquote(n)
    end
  end

  test "a killed node is marked down on the others, then comes back with a new incarnation" do
    [a, b, c] = peers = Peers.start_many(:kill, 3, coordinator: @fast)
    on_exit(fn -> Peers.stop_all(peers) end)
    Peers.connect_all(peers)
    eventually(fn -> converged?(peers) end, 30_000, "convergence")
    old = Peers.presence(a) |> Map.values() |> Enum.find(&(&1.node == c.node))

    Peers.kill(c)

    eventually(
      fn -> Peers.active_nodes(a) == Enum.sort([a.node, b.node]) end,
      10_000,
      "down on a"
    )

    eventually(
      fn -> Peers.active_nodes(b) == Enum.sort([a.node, b.node]) end,
      10_000,
      "down on b"
    )

    down = Peers.presence(a, include_down: true) |> Map.fetch!(old.node_id)
    assert down.status == :down

    # Same name, same data dir (same identity): recognised by its incarnation.
    c2 = Peers.start(c.name, dir: c.dir, coordinator: @fast)
    on_exit(fn -> Peers.stop(c2) end)
    true = Peers.connect(c2, a)
    true = Peers.connect(c2, b)
    eventually(fn -> converged?([a, b, c2]) end, 30_000, "rejoin")
    back = Peers.presence(a) |> Map.fetch!(old.node_id)
    assert back.node_id == old.node_id
    assert back.incarnation == old.incarnation + 1
    assert back.status == :up
  end

  test "a partition marks each side down for the other, and healing converges" do
    [a, b, c, d] = peers = Peers.start_many(:split, 4, coordinator: @fast)
    on_exit(fn -> Peers.stop_all(peers) end)
    Peers.connect_all(peers)
    eventually(fn -> converged?(peers) end, 30_000, "convergence")

    # Split {a, b} | {c, d}, then write on both sides of the split.
    for x <- [a, b], y <- [c, d], do: Peers.disconnect(x, y)
    side1 = Enum.sort([a.node, b.node])
    side2 = Enum.sort([c.node, d.node])
    eventually(fn -> Peers.active_nodes(a) == side1 end, 10_000, "a sees its side")
    eventually(fn -> Peers.active_nodes(c) == side2 end, 10_000, "c sees its side")

    :ok =
      Peers.call(a, Keyring.Coordinator, :register, [:left, {Keyring.Test.Handlers, :echo, []}])

    :ok =
      Peers.call(d, Keyring.Coordinator, :register, [:right, {Keyring.Test.Handlers, :echo, []}])

    # Heal.
    for x <- [a, b], y <- [c, d], do: true = Peers.connect(x, y)
    eventually(fn -> converged?(peers) end, 30_000, "heal")

    eventually(
      fn ->
        Enum.all?(peers, fn p ->
          caps = p |> Peers.presence() |> Map.values() |> Enum.flat_map(& &1.capabilities)
          :left in caps and :right in caps
        end)
      end,
      30_000,
      "writes from both sides everywhere"
    )
  end

  test "a node down longer than permdown_after is removed from the map everywhere" do
    conf = [heartbeat: 100, permdown_after: 1_000]
    [a, b, c] = peers = Peers.start_many(:perm, 3, coordinator: conf)
    on_exit(fn -> Peers.stop_all(peers) end)
    Peers.connect_all(peers)
    eventually(fn -> converged?(peers) end, 30_000, "convergence")

    c_id =
      Peers.presence(a) |> Map.values() |> Enum.find(&(&1.node == c.node)) |> Map.fetch!(:node_id)

    Peers.kill(c)

    eventually(
      fn -> Enum.all?([a, b], &(Peers.presence(&1, include_down: true)[c_id] == nil)) end,
      15_000,
      "c removed on a and b"
    )

    assert Peers.call(a, Keyring.CRDT, :get, [Keyring.PresenceMap, {:node, c_id}]) == nil
  end
end
