defmodule Keyring.FeedTest do
  use ExUnit.Case, async: false

  import Keyring.Test.Instances
  alias Keyring.Feed
  alias Keyring.Test.Feeds

  doctest Keyring.Feed

  setup do
    a = start_instance(:feed_a)
    {:ok, ring} = Keyring.Ring.create("notes", instance: a)
    %{a: a, ring: ring}
  end

  test "appended entries form a hash chain that query reads back in order", %{a: a, ring: ring} do
    entries =
      for i <- 1..5 do
        {:ok, e} = Feed.append(ring, "note #{i}", type: "text/plain", instance: a)
        e
      end

    assert Enum.map(entries, & &1.seq) == [1, 2, 3, 4, 5]
    assert hd(entries).prev == <<0::256>>
    for [x, y] <- Enum.chunk_every(entries, 2, 1, :discard), do: assert(y.prev == x.hash)

    assert {:ok, ^entries} = Feed.query(keyring: ring, instance: a)
    assert Feed.head(ring, key(a), instance: a) == {5, List.last(entries).hash}
    assert Feed.heads(ring, instance: a) == [{key(a), 5}]
  end

  test "query filters by author, sequence range and content type, and stops at the limit",
       %{a: a, ring: ring} do
    for i <- 1..6 do
      type = if rem(i, 2) == 0, do: "even", else: "odd"
      {:ok, _} = Feed.append(ring, "#{i}", type: type, instance: a)
    end

    seqs = fn opts ->
      {:ok, es} = Feed.query([instance: a, keyring: ring] ++ opts)
      Enum.map(es, & &1.seq)
    end

    assert seqs.(from: 2, to: 4) == [2, 3, 4]
    assert seqs.(type: "even") == [2, 4, 6]
    assert seqs.(author: key(a), type: "odd", from: 2) == [3, 5]
    assert seqs.(limit: 2) == [1, 2]
    assert seqs.(author: <<1::256>>) == []
  end

  test "content over 16 KiB is stored as a blob and the entry names its cid", %{a: a, ring: ring} do
    big = :crypto.strong_rand_bytes(40_000)
    {:ok, e} = Feed.append(ring, big, instance: a)
    assert e.content == nil and e.size == 40_000
    assert {:ok, ^big} = Keyring.Store.get(e.cid, instance: a, verify: true)
  end

  test "appending to a keyring this node is not in is refused", %{a: a, ring: ring} do
    assert {:error, :not_member} = Feed.append(<<9::256>>, "x", instance: a)
    assert_raise ArgumentError, fn -> Feed.append(ring, "x", type: "Bad Type", instance: a) end
  end

  test "a new entry is announced on keyring:feed", %{a: a, ring: ring} do
    :ok = Feed.subscribe(instance: a)
    {:ok, e} = Feed.append(ring, "hi", instance: a)
    assert_receive {:keyring_feed, :entry, ^e}
  end

  test "concurrent appends get consecutive seqs and events keep sequence order",
       %{a: a, ring: ring} do
    :ok = Feed.subscribe(instance: a)

    seqs =
      1..100
      |> Task.async_stream(fn i -> Feed.append(ring, "#{i}", instance: a) end, max_concurrency: 20)
      |> Enum.map(fn {:ok, {:ok, e}} -> e.seq end)

    assert Enum.sort(seqs) == Enum.to_list(1..100)
    events = for _ <- 1..100, do: assert_receive({:keyring_feed, :entry, e}) && e.seq
    assert events == Enum.to_list(1..100)
  end

  test "feeds are durable: a restarted node reads its chain and appends after it" do
    {name, start} = restartable_instance(:feed_restart)
    pid = start.()
    {:ok, ring} = Keyring.Ring.create("r", instance: name)
    for i <- 1..3, do: {:ok, _} = Feed.append(ring, "#{i}", instance: name)
    stop(pid)

    start.()
    assert {3, _} = Feed.head(ring, key(name), instance: name)
    {:ok, e} = Feed.append(ring, "4", instance: name)
    assert e.seq == 4
    {:ok, all} = Feed.query(keyring: ring, instance: name)
    assert Enum.map(all, & &1.content) == ["1", "2", "3", "4"]
  end

  test "a feed longer than one store block is read back and reloaded whole" do
    {name, start} = restartable_instance(:feed_blocks)
    pid = start.()
    {:ok, ring} = Keyring.Ring.create("r", instance: name)
    entries = Feeds.entries(name, ring, 4100)

    for batch <- Enum.chunk_every(entries, 256) do
      {:ok, results} = Feed.ingest(ring, batch, instance: name)
      assert Enum.all?(results, &(&1 == {:ok, :chained}))
    end

    stop(pid)
    start.()
    assert {4100, _} = Feed.head(ring, key(name), instance: name)
    {:ok, tail} = Feed.query(keyring: ring, from: 4090, instance: name)
    assert Enum.map(tail, & &1.seq) == Enum.to_list(4090..4100)
    {:ok, all} = Feed.query(keyring: ring, limit: 5000, instance: name)
    assert length(all) == 4100
  end

  test "follows are kept per keyring", %{a: a, ring: ring} do
    assert Feed.follows(ring, instance: a) == []
    :ok = Feed.follow(ring, <<1::256>>, instance: a)
    :ok = Feed.follow(ring, <<2::256>>, instance: a)
    assert Feed.follows(ring, instance: a) == [<<1::256>>, <<2::256>>]
    :ok = Feed.unfollow(ring, <<1::256>>, instance: a)
    assert Feed.follows(ring, instance: a) == [<<2::256>>]
    assert Feed.follows(<<3::256>>, instance: a) == []
  end
end
