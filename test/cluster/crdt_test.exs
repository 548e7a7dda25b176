defmodule Keyring.Cluster.CRDTTest do
  use ExUnit.Case, async: false
  @moduletag :cluster
  @moduletag timeout: 120_000

  alias Keyring.Test.Peers
  import Keyring.Test.Eventually

  defp start_map(p),
    do:
      {:ok, _} =
        Peers.call(p, Supervisor, :start_child, [
          Keyring.Application.Supervisor,
          {Keyring.CRDT, name: Board, sync_interval: 500}
        ])

  defp put(p, k, v), do: :ok = Peers.call(p, Keyring.CRDT, :put, [Board, k, v])
  defp del(p, k), do: :ok = Peers.call(p, Keyring.CRDT, :delete, [Board, k])
  defp map(p), do: Peers.call(p, Keyring.CRDT, :to_map, [Board])

  test "writes on both sides of a partition all survive the heal, identically everywhere" do
    [a, b, c] = peers = Peers.start_many(:board, 3)
    on_exit(fn -> Peers.stop_all(peers) end)
    Peers.connect_all(peers)
    Enum.each(peers, &start_map/1)

    eventually(
      fn ->
        Enum.all?(peers, &(length(Peers.call(&1, Keyring.CRDT, :neighbours, [Board])) == 2))
      end,
      20_000,
      "wired"
    )

    put(a, :shared, :before)
    put(a, :doomed, 1)

    eventually(
      fn -> Enum.all?(peers, &(map(&1) == %{shared: :before, doomed: 1})) end,
      10_000,
      "initial"
    )

    Peers.disconnect(a, b)
    Peers.disconnect(a, c)
    eventually(fn -> Peers.call(a, Node, :list, []) == [] end, 10_000, "split")

    # Side {a}: removes :doomed and writes :shared first; side {b, c}: writes
    # :doomed again (concurrently: add wins) and :shared later (LWW by HLC).
    del(a, :doomed)
    put(a, :shared, :left)
    put(a, :left_only, 1)
    Process.sleep(5)
    put(b, :doomed, 2)
    put(c, :shared, :right)
    put(c, :right_only, 1)

    true = Peers.connect(a, b)
    true = Peers.connect(a, c)
    want = %{shared: :right, doomed: 2, left_only: 1, right_only: 1}
    eventually(fn -> Enum.all?(peers, &(map(&1) == want)) end, 20_000, "healed maps")
  end

  test "a hung coordinator is marked down by missed beats and comes back when it resumes" do
    conf = [heartbeat: 100, beat_every: 1, down_after: 600]
    [a, b] = peers = Peers.start_many(:hung, 2, coordinator: conf)
    on_exit(fn -> Peers.stop_all(peers) end)
    Peers.connect_all(peers)

    eventually(
      fn -> Peers.active_nodes(a) == Enum.sort([a.node, b.node]) end,
      20_000,
      "converged"
    )

    coordinator = Peers.call(b, Process, :whereis, [Keyring.Coordinator])
    :ok = Peers.call(b, :sys, :suspend, [coordinator])
    eventually(fn -> Peers.active_nodes(a) == [a.node] end, 10_000, "b marked down on a")
    # Still connected: this was the missed-beat path, not nodedown.
    assert b.node in Peers.call(a, Node, :list, [])

    :ok = Peers.call(b, :sys, :resume, [coordinator])
    eventually(fn -> Peers.active_nodes(a) == Enum.sort([a.node, b.node]) end, 10_000, "b back")
  end
end
