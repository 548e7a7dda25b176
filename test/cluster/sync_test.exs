defmodule Keyring.Cluster.SyncTest do
  # Blob transfer between real VMs that are NOT connected by Erlang
  # distribution: every byte goes over the QUIC mesh, verified in Rust.
  use ExUnit.Case, async: false
  @moduletag :cluster

  alias Keyring.Test.Peers

  defp dirs(names, u),
    do: for(n <- names, do: Path.join(System.tmp_dir!(), "keyring-sync-#{n}-#{u}"))

  defp start_nodes(names) do
    u = "#{System.os_time(:nanosecond)}_#{System.unique_integer([:positive])}"
    dirs = dirs(names, u)

    peers =
      for {n, dir} <- Enum.zip(names, dirs),
          do: Peers.start(:"sync_#{n}_#{u}", dir: dir)

    on_exit(fn ->
      Peers.stop_all(peers)
      Enum.each(dirs, &File.rm_rf/1)
    end)

    {peers, dirs, u}
  end

  # A creates keyring "files"; every other node joins it.
  defp keyring([a | others]) do
    {:ok, ring} = Peers.call(a, Keyring.Ring, :create, ["files"])

    for o <- others do
      {:ok, invite} = Peers.call(a, Keyring.Ring, :invite, [ring])
      assert {:ok, ^ring} = Peers.call(o, Keyring, :join, [invite])
    end

    ring
  end

  defp put_shared(node, data, ring) do
    {:ok, cid} = Peers.call(node, Keyring.Store, :put, [data], 60_000)
    {:ok, _} = Peers.call(node, Keyring.Store, :share, [cid, ring])
    cid
  end

  defp key(node), do: Peers.call(node, Keyring.Identity, :public_key, [])

  test "a multi-MiB blob put on one node is fetched verified by another" do
    {[a, b], _, _} = start_nodes([:a, :b])
    ring = keyring([a, b])
    data = :crypto.strong_rand_bytes(6 * 1024 * 1024 + 123)
    cid = put_shared(a, data, ring)

    assert {:ok, t} =
             Peers.call(b, Keyring.Sync, :fetch, [cid, [from: key(a), keyring: ring]], 60_000)

    assert t.stage == :done
    assert t.bytes_done == byte_size(data)
    assert t.providers[key(a)] == byte_size(data)
    assert {:ok, ^data} = Peers.call(b, Keyring.Store, :get, [cid])
    # Fetched content is shared into the keyring it came for.
    assert Peers.call(b, Keyring.Store, :shared_in?, [cid, ring])
    assert [%{id: _, stage: :done}] = Peers.call(b, Keyring.Sync, :transfers, [])
  end

  test "a member guessing a cid shared only in another keyring learns nothing" do
    {[a, b], _, _} = start_nodes([:a, :b])
    ring = keyring([a, b])
    # A is also in "secret", which B is not in; A shares a blob only there.
    {:ok, secret_ring} = Peers.call(a, Keyring.Ring, :create, ["secret"])
    secret = put_shared(a, :crypto.strong_rand_bytes(100_000), secret_ring)
    absent = Keyring.Store.Cid.of("never stored anywhere")

    fetch = fn cid ->
      Peers.call(b, Keyring.Sync, :fetch, [cid, [from: key(a), keyring: ring]])
    end

    assert {:error, :not_found, t1} = fetch.(secret)
    assert {:error, :not_found, t2} = fetch.(absent)
    # The two answers are indistinguishable: nothing was sent for either.
    assert {t1.bytes_done, t1.bytes_total} == {0, 0}
    assert {t2.bytes_done, t2.bytes_total} == {0, 0}
    refute Peers.call(b, Keyring.Store, :has?, [secret])
    assert {:error, :not_found} = Peers.call(b, Keyring.Store, :partial, [secret])
    # B cannot even name "secret" as the keyring to fetch for.
    assert {:error, :not_member} =
             Peers.call(b, Keyring.Sync, :fetch, [secret, [from: key(a), keyring: secret_ring]])
  end

  test "a mirrored keyring's shared blobs arrive when it is marked" do
    {[a, b], _, _} = start_nodes([:a, :b])
    ring = keyring([a, b])
    blobs = for i <- 1..200, do: :crypto.strong_rand_bytes(100 + i * 97)
    big = :crypto.strong_rand_bytes(2_000_000)
    cids = for d <- [big | blobs], do: put_shared(a, d, ring)
    # A directory tree shared by its root: its nodes and files come by DAG
    # sync, its file over 1 MiB by blob transfer.
    tree = Path.join(System.tmp_dir!(), "sync-tree-#{System.unique_integer([:positive])}")
    on_exit(fn -> File.rm_rf(tree) end)
    File.mkdir_p!(Path.join(tree, "docs/deep"))
    File.write!(Path.join(tree, "readme.txt"), "hello")
    File.write!(Path.join(tree, "docs/deep/notes.txt"), String.duplicate("n", 40_000))
    File.write!(Path.join(tree, "docs/big.bin"), :crypto.strong_rand_bytes(1_500_000))
    {:ok, root} = Peers.call(a, Keyring.DAG, :put_dir, [tree], 60_000)
    {:ok, _} = Peers.call(a, Keyring.Store, :share, [root, ring])
    # Make sure B has a live link to A (a call dials it).
    a_id = Peers.call(a, Keyring.Identity, :node_id, [])
    :ok = Peers.call(a, Keyring, :expose, [:ping, &Function.identity/1])
    assert {:ok, 1} = Peers.call(b, Keyring, :call, [a_id, :ping, 1])
    assert key(a) in Peers.call(b, Keyring.Ring, :connected, [ring])

    :ok = Peers.call(b, Keyring.Sync, :mirror, [ring])

    assert Keyring.Test.Eventually.eventually(fn ->
             Enum.all?(cids, &Peers.call(b, Keyring.Store, :has?, [&1]))
           end)

    assert {:ok, ^big} = Peers.call(b, Keyring.Store, :get, [hd(cids)])

    out = tree <> "-copy"
    on_exit(fn -> File.rm_rf(out) end)

    assert Keyring.Test.Eventually.eventually(fn ->
             File.rm_rf(out)
             Peers.call(b, Keyring.DAG, :get_dir, [root, out]) == :ok
           end)

    assert File.read!(Path.join(out, "docs/big.bin")) ==
             File.read!(Path.join(tree, "docs/big.bin"))

    assert File.read!(Path.join(out, "docs/deep/notes.txt")) ==
             File.read!(Path.join(tree, "docs/deep/notes.txt"))

    assert [%{reason: :mirror, stage: :done, blobs_total: 202} | _] =
             Peers.call(b, Keyring.Sync, :transfers, []) |> Enum.sort_by(& &1.id)
  end

  test "a file a DAG sync made servable in one keyring is not served to another" do
    # Files over 1 MiB under a shared root come by blob transfer, which the
    # DAG provider grants for the keyring it proved them reachable in; a
    # member of another keyring of the same node gets not_found for them.
    {[a, b, c], _, _} = start_nodes([:a, :b, :c])
    ring = keyring([a, b])
    other = keyring([a, c])
    tree = Path.join(System.tmp_dir!(), "sync-grant-#{System.unique_integer([:positive])}")
    on_exit(fn -> File.rm_rf(tree) end)
    File.mkdir_p!(tree)
    File.write!(Path.join(tree, "big.bin"), :crypto.strong_rand_bytes(1_500_000))
    {:ok, root} = Peers.call(a, Keyring.DAG, :put_dir, [tree], 60_000)
    {:ok, _} = Peers.call(a, Keyring.Store, :share, [root, ring])

    assert {:ok, %{deferred: [{big, _size}]}} =
             Peers.call(b, Keyring.DAG, :fetch, [root, [from: key(a), keyring: ring, blobs: true]])

    assert {:error, :not_found, t} =
             Peers.call(c, Keyring.Sync, :fetch, [big, [from: key(a), keyring: other]])

    assert t.bytes_done == 0

    assert {:ok, %{stage: :done}} =
             Peers.call(b, Keyring.Sync, :fetch, [big, [from: key(a), keyring: ring]])
  end

  test "a keyring marked for mirroring stays marked after a restart" do
    {[a, b], [_, b_dir], u} = start_nodes([:a, :b])
    ring = keyring([a, b])
    :ok = Peers.call(b, Keyring.Sync, :mirror, [ring])
    assert Peers.call(b, Keyring.Sync, :mirrored, []) == [ring]
    Peers.stop(b)
    b2 = Peers.start(:"sync_b2_#{u}", dir: b_dir)
    on_exit(fn -> Peers.stop(b2) end)
    assert Peers.call(b2, Keyring.Sync, :mirrored, []) == [ring]
    :ok = Peers.call(b2, Keyring.Sync, :unmirror, [ring])
    assert Peers.call(b2, Keyring.Sync, :mirrored, []) == []
  end

  test "connected_peers lists linked members with their keyrings" do
    {[a, b], _, _} = start_nodes([:a, :b])
    ring = keyring([a, b])
    a_id = Peers.call(a, Keyring.Identity, :node_id, [])
    :ok = Peers.call(a, Keyring, :expose, [:ping, &Function.identity/1])
    assert {:ok, 1} = Peers.call(b, Keyring, :call, [a_id, :ping, 1])
    a_key = key(a)

    assert [%{peer: ^a_key, keyrings: [^ring]}] =
             Peers.call(b, Keyring.Sync, :connected_peers, [])
  end
end
