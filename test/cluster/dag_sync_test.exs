defmodule Keyring.Cluster.DagSyncTest do
  # Two VMs, not connected by Erlang distribution: DAG sync goes over the
  # QUIC mesh only. The second VM catches up a chain of 1,000 events, then
  # 500 more, and a directory tree, counting round trips each time.
  use ExUnit.Case, async: false
  @moduletag :cluster

  alias Keyring.Test.Peers

  setup do
    u = "#{System.os_time(:nanosecond)}_#{System.unique_integer([:positive])}"
    dirs = for n <- [:a, :b], do: Path.join(System.tmp_dir!(), "keyring-dagsync-#{n}-#{u}")

    [a, b] =
      for {n, dir} <- Enum.zip([:a, :b], dirs), do: Peers.start(:"dagsync_#{n}_#{u}", dir: dir)

    tree = Path.join(System.tmp_dir!(), "keyring-dagsync-tree-#{u}")
    out = Path.join(System.tmp_dir!(), "keyring-dagsync-out-#{u}")

    on_exit(fn ->
      Peers.stop_all([a, b])
      Enum.each([tree, out | dirs], &File.rm_rf/1)
    end)

    {:ok, ring} = Peers.call(a, Keyring.Ring, :create, ["content"])
    {:ok, invite} = Peers.call(a, Keyring.Ring, :invite, [ring])
    {:ok, ^ring} = Peers.call(b, Keyring, :join, [invite])
    %{a: a, b: b, ring: ring, tree: tree, out: out}
  end

  defp events(n, from), do: for(i <- from..(from + n - 1), do: "event #{i}")

  test "a second VM catches up a deep chain and a directory tree in at most two round trips",
       %{a: a, b: b, ring: ring, tree: tree, out: out} do
    a_id = Peers.call(a, Keyring.Identity, :node_id, [])

    {:ok, head} = Peers.call(a, Keyring.DAG, :put_events, [events(1000, 0)])
    # Not shared yet: the provider answers as for an absent root.
    assert {:error, :not_found} =
             Peers.call(b, Keyring.DAG, :fetch, [head, [from: a_id, keyring: ring]])

    {:ok, _} = Peers.call(a, Keyring.Store, :share, [head, ring])

    assert {:ok, report} =
             Peers.call(b, Keyring.DAG, :fetch, [head, [from: a_id, keyring: ring]], 60_000)

    assert report.round_trips <= 2
    assert report.received == 1000
    assert report.missing == []
    assert report.wire_bytes <= 1.1 * report.received_bytes

    chain = Peers.call(b, Enum, :to_list, [Peers.call(b, Keyring.DAG, :stream, [head])])
    assert length(chain) == 1000
    refute Enum.any?(chain, fn {_cid, _depth, v} -> v == :missing end)

    # The chain grows by 500: only those travel, in one round trip.
    {:ok, head2} = Peers.call(a, Keyring.DAG, :put_events, [events(500, 1000), [prev: head]])
    {:ok, _} = Peers.call(a, Keyring.Store, :share, [head2, ring])

    assert {:ok, report2} =
             Peers.call(b, Keyring.DAG, :fetch, [
               head2,
               [from: a_id, keyring: ring, have: [head]]
             ])

    assert report2.round_trips == 1
    assert report2.received == 500

    # A directory tree (depth 4), files travelling as blobs in the stream.
    for d <- ["x/y/z", "x/w", "v"], do: File.mkdir_p!(Path.join(tree, d))

    files =
      for {path, i} <- Enum.with_index(["x/y/z/deep.txt", "x/w/a.bin", "v/b", "top"]),
          into: %{},
          do: {path, :crypto.strong_rand_bytes(1000 * (i + 1))}

    for {path, data} <- files, do: File.write!(Path.join(tree, path), data)
    {:ok, root} = Peers.call(a, Keyring.DAG, :put_dir, [tree])
    {:ok, _} = Peers.call(a, Keyring.Store, :share, [root, ring])

    assert {:ok, report3} =
             Peers.call(b, Keyring.DAG, :fetch, [
               root,
               [from: a_id, keyring: ring, blobs: true]
             ])

    assert report3.round_trips == 1
    # 6 directories (root, x, x/y, x/y/z, x/w, v) and 4 files.
    assert report3.received == 10
    :ok = Peers.call(b, Keyring.DAG, :get_dir, [root, out])
    for {path, data} <- files, do: assert(File.read!(Path.join(out, path)) == data)
  end
end
