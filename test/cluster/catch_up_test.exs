defmodule Keyring.Cluster.CatchUpTest do
  # Three members over the QUIC mesh only. C is offline while A's feed grows
  # by 1,000 entries, B's by 10 and A's directory tree changes; C comes back,
  # gets both feeds by the pull on reconnect and the new tree by one DAG
  # sync that skips what it already holds.
  use ExUnit.Case, async: false
  @moduletag :cluster

  import Keyring.Test.Eventually
  alias Keyring.Test.Peers

  setup do
    u = "#{System.os_time(:nanosecond)}_#{System.unique_integer([:positive])}"
    dirs = for n <- [:a, :b, :c], do: Path.join(System.tmp_dir!(), "keyring-catchup-#{n}-#{u}")
    tree = Path.join(System.tmp_dir!(), "keyring-catchup-tree-#{u}")
    out = Path.join(System.tmp_dir!(), "keyring-catchup-out-#{u}")

    peers =
      for {n, dir} <- Enum.zip([:a, :b, :c], dirs),
          do: Peers.start(:"catchup_#{n}_#{u}", dir: dir)

    on_exit(fn ->
      Peers.stop_all(peers)
      Enum.each([tree, out | dirs], &File.rm_rf/1)
    end)

    [a, b, c] = peers
    {:ok, ring} = Peers.call(a, Keyring.Ring, :create, ["team"])

    for p <- [b, c] do
      {:ok, invite} = Peers.call(a, Keyring.Ring, :invite, [ring])
      {:ok, ^ring} = Peers.call(p, Keyring, :join, [invite])
    end

    %{a: a, b: b, c: c, ring: ring, u: u, c_dir: Enum.at(dirs, 2), tree: tree, out: out}
  end

  defp head(peer, ring, author), do: Peers.call(peer, Keyring.Feed, :head, [ring, author])

  test "a member offline while feeds grow and a tree changes catches up completely",
       %{a: a, b: b, c: c, ring: ring, u: u, c_dir: c_dir, tree: tree, out: out} do
    [a_key, b_key] = for p <- [a, b], do: Peers.call(p, Keyring.Identity, :public_key, [])
    a_id = Peers.call(a, Keyring.Identity, :node_id, [])

    File.mkdir_p!(Path.join(tree, "docs/deep/er"))
    File.write!(Path.join(tree, "docs/deep/er/a.txt"), "one")
    File.write!(Path.join(tree, "top.txt"), "top")
    {:ok, root1} = Peers.call(a, Keyring.DAG, :put_dir, [tree])
    {:ok, _} = Peers.call(a, Keyring.Store, :share, [root1, ring])

    {:ok, _} =
      Peers.call(c, Keyring.DAG, :fetch, [root1, [from: a_id, keyring: ring, blobs: true]])

    {:ok, _} = Peers.call(a, Keyring.Feed, :append, [ring, "before"])
    eventually(fn -> match?({1, _}, head(c, ring, a_key)) end)

    Peers.stop(c)

    for i <- 1..1000, do: {:ok, _} = Peers.call(a, Keyring.Feed, :append, [ring, "a #{i}"])
    for i <- 1..10, do: {:ok, _} = Peers.call(b, Keyring.Feed, :append, [ring, "b #{i}"])
    File.write!(Path.join(tree, "docs/deep/er/a.txt"), "two")
    File.write!(Path.join(tree, "docs/new.txt"), "new")
    {:ok, root2} = Peers.call(a, Keyring.DAG, :put_dir, [tree])
    {:ok, _} = Peers.call(a, Keyring.Store, :share, [root2, ring])

    c = Peers.start(:"catchup_c2_#{u}", dir: c_dir)
    on_exit(fn -> Peers.stop(c) end)

    eventually(fn -> match?({1001, _}, head(c, ring, a_key)) end, 30_000, "A's feed")
    eventually(fn -> match?({10, _}, head(c, ring, b_key)) end, 30_000, "B's feed")

    assert {:ok, report} =
             Peers.call(c, Keyring.DAG, :fetch, [
               root2,
               [from: a_id, keyring: ring, blobs: true, have: [root1]]
             ])

    assert report.round_trips == 1
    # The root, docs/, deep/, er/ and the two new files: top.txt is skipped.
    assert report.received == 6
    :ok = Peers.call(c, Keyring.DAG, :get_dir, [root2, out])
    assert File.read!(Path.join(out, "docs/deep/er/a.txt")) == "two"
    assert File.read!(Path.join(out, "docs/new.txt")) == "new"
    assert File.read!(Path.join(out, "top.txt")) == "top"
  end
end
