defmodule Keyring.Cluster.FeedReplicationTest do
  # Two VMs, not connected by Erlang distribution: feeds and signed refs
  # replicate over the QUIC mesh only (protocol 5). Pushed at once while
  # linked, pulled on reconnect; what a member sends is verified on ingest.
  use ExUnit.Case, async: false
  @moduletag :cluster

  import Keyring.Test.Eventually
  alias Keyring.Test.Peers

  setup do
    u = "#{System.os_time(:nanosecond)}_#{System.unique_integer([:positive])}"
    dirs = for n <- [:a, :b], do: Path.join(System.tmp_dir!(), "keyring-feedrep-#{n}-#{u}")

    [a, b] =
      for {n, dir} <- Enum.zip([:a, :b], dirs), do: Peers.start(:"feedrep_#{n}_#{u}", dir: dir)

    on_exit(fn ->
      Peers.stop_all([a, b])
      Enum.each(dirs, &File.rm_rf/1)
    end)

    {:ok, ring} = Peers.call(a, Keyring.Ring, :create, ["feeds"])
    {:ok, invite} = Peers.call(a, Keyring.Ring, :invite, [ring])
    {:ok, ^ring} = Peers.call(b, Keyring, :join, [invite])
    a_key = Peers.call(a, Keyring.Identity, :public_key, [])
    b_key = Peers.call(b, Keyring.Identity, :public_key, [])
    eventually(fn -> Peers.call(a, Keyring.Ring, :connected, [ring]) == [b_key] end)
    %{a: a, b: b, ring: ring, a_key: a_key, b_key: b_key, u: u, dirs: dirs}
  end

  defp head(peer, ring, author), do: Peers.call(peer, Keyring.Feed, :head, [ring, author])

  test "a new entry reaches a linked member at once; 1,000 more arrive after it reconnects",
       %{a: a, b: b, ring: ring, a_key: a_key, u: u, dirs: [_, b_dir]} do
    {:ok, _} = Peers.call(a, Keyring.Feed, :append, [ring, "first"])
    eventually(fn -> match?({1, _}, head(b, ring, a_key)) end, 5_000, "the push")

    # B goes offline; A's feed grows by 1,000 entries; B comes back.
    Peers.stop(b)

    for i <- 1..1000, do: {:ok, _} = Peers.call(a, Keyring.Feed, :append, [ring, "entry #{i}"])

    {:ok, cid} = Peers.call(a, Keyring.Store, :put, ["site v1"])
    {:ok, _} = Peers.call(a, Keyring.Refs, :publish, [ring, "www", cid])

    b = Peers.start(:"feedrep_b2_#{u}", dir: b_dir)
    on_exit(fn -> Peers.stop(b) end)
    eventually(fn -> match?({1001, _}, head(b, ring, a_key)) end, 30_000, "the catch-up")

    # Chained in memory first, then durable: the query sees them once written.
    eventually(fn ->
      {:ok, entries} =
        Peers.call(b, Keyring.Feed, :query, [[keyring: ring, author: a_key, limit: 2000]])

      Enum.map(entries, & &1.seq) == Enum.to_list(1..1001)
    end)

    eventually(fn ->
      match?({:ok, %{seq: 1}}, Peers.call(b, Keyring.Refs, :get, [ring, a_key, "www"]))
    end)
  end

  test "a member's wrong-key entry, forked feed and replayed ref are refused or reported, and the node keeps serving",
       %{a: a, b: b, ring: ring, a_key: a_key, b_key: b_key} do
    mesh_b = fn -> Peers.call(b, Keyring.Instance, :fetch!, [Keyring, :mesh]) end

    push = fn entries, refs ->
      Peers.call(b, Keyring.Native, :mesh_feeds_push, [mesh_b.(), ring, entries, refs])
    end

    # A's genuine entry 1, then B pushes a copy of A's entry 2 with its
    # signature broken (a wrong-key entry).
    {:ok, e1} = Peers.call(a, Keyring.Feed, :append, [ring, "genuine"])
    eventually(fn -> match?({1, _}, head(b, ring, a_key)) end)

    [forged] =
      Peers.call(a, Keyring.Test.Feeds, :entries, [
        Keyring,
        ring,
        1,
        [before: [e1.bytes], tag: "x"]
      ])

    1 = push.([Peers.call(b, Keyring.Test.Feeds, :tamper, [forged])], [])

    # B's own feed: entry 1, then a second, different entry 1 (a fork).
    {:ok, _} = Peers.call(b, Keyring.Feed, :append, [ring, "b one"])
    eventually(fn -> match?({1, _}, head(a, ring, b_key)) end)
    [fork] = Peers.call(b, Keyring.Test.Feeds, :entries, [Keyring, ring, 1, [tag: "fork"]])
    1 = push.([fork], [])

    eventually(
      fn ->
        match?({:ok, [%{seq: 1}]}, Peers.call(a, Keyring.Feed, :forks, [ring]))
      end,
      5_000,
      "the fork reported"
    )

    # B's ref at seq 2 then a replay of seq 1.
    {:ok, cid} = Peers.call(b, Keyring.Store, :put, ["v"])
    {:ok, _} = Peers.call(b, Keyring.Refs, :publish, [ring, "r", cid])
    {:ok, _} = Peers.call(b, Keyring.Refs, :publish, [ring, "r", cid])

    eventually(fn ->
      match?({:ok, %{seq: 2}}, Peers.call(a, Keyring.Refs, :get, [ring, b_key, "r"]))
    end)

    old = Peers.call(b, Keyring.Test.Feeds, :ref, [Keyring, ring, "r", cid, 1])
    1 = push.([], [old])

    # A kept its chain, the newer ref, and serves B's next entry.
    {:ok, _} = Peers.call(b, Keyring.Feed, :append, [ring, "b two"])
    eventually(fn -> match?({2, _}, head(a, ring, b_key)) end)
    assert {1, _} = head(a, ring, a_key)
    {:ok, [only]} = Peers.call(a, Keyring.Feed, :query, [[keyring: ring, author: a_key]])
    assert only.hash == e1.hash
    assert {:ok, %{seq: 2}} = Peers.call(a, Keyring.Refs, :get, [ring, b_key, "r"])
  end
end
