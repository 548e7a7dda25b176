defmodule Keyring.Adversarial.FeedAttacksTest do
  # Attacks on feed ingest (issue 11): entries signed by the wrong key,
  # from non-members or for another keyring, a forked feed, entries from the
  # future, and a flood of entries that can never chain. Each is refused or
  # held as described, and the node keeps chaining an honest member's feed.
  use ExUnit.Case, async: false

  import Keyring.Test.Instances
  alias Keyring.Feed
  alias Keyring.Test.Feeds

  setup do
    [alice, bob, mallory] = [
      start_instance(:alice),
      start_instance(:bob),
      start_instance(:mallory)
    ]

    ring = ring_with(alice, [bob])
    other = ring_with(mallory, [alice])
    :ok = Feed.subscribe(instance: bob)
    %{alice: alice, bob: bob, mallory: mallory, ring: ring, other: other}
  end

  # Alice's honest entries, signed here rather than appended: an appended
  # entry is also pushed to bob over the mesh at once (replication), and
  # these tests deliver the bytes themselves, in the order the attack needs.
  defp honest(ctx, n), do: Feeds.entries(ctx.alice, ctx.ring, n)

  defp bob_seqs(ctx) do
    {:ok, entries} = Feed.query(keyring: ctx.ring, author: key(ctx.alice), instance: ctx.bob)
    Enum.map(entries, & &1.seq)
  end

  test "an entry signed by the wrong key is refused and honest entries still chain", ctx do
    [e1, e2] = honest(ctx, 2)

    assert {:ok, [{:error, :bad_signature}]} =
             Feed.ingest(ctx.ring, [Feeds.tamper(e1)], instance: ctx.bob)

    assert bob_seqs(ctx) == []

    assert {:ok, [{:ok, :chained}, {:ok, :chained}]} =
             Feed.ingest(ctx.ring, [e1, e2], instance: ctx.bob)

    assert bob_seqs(ctx) == [1, 2]
  end

  test "entries of a non-member or for another keyring are refused", ctx do
    # Mallory signs a well-formed feed "in" Alice's keyring, which she is not in.
    [forged] = Feeds.entries(ctx.mallory, ctx.ring, 1)
    # Alice's own entry for the keyring she shares with Mallory, sent as if for ctx.ring.
    [elsewhere] = Feeds.entries(ctx.alice, ctx.other, 1)

    assert {:ok, [{:error, :not_a_member}, {:error, :wrong_keyring}]} =
             Feed.ingest(ctx.ring, [forged, elsewhere], instance: ctx.bob)

    assert {:ok, [{:error, {:malformed, _}}]} =
             Feed.ingest(ctx.ring, [<<1, "junk">>], instance: ctx.bob)

    refute_received {:keyring_feed, :entry, _}
    [e1] = honest(ctx, 1)
    assert {:ok, [{:ok, :chained}]} = Feed.ingest(ctx.ring, [e1], instance: ctx.bob)
  end

  test "an entry from the future waits, then its predecessor chains both", ctx do
    [e1, e2, e3] = honest(ctx, 3)

    assert {:ok, [{:ok, :held}, {:ok, :held}]} =
             Feed.ingest(ctx.ring, [e3, e2], instance: ctx.bob)

    assert bob_seqs(ctx) == []
    refute_received {:keyring_feed, :entry, _}
    assert {:ok, [{:ok, :chained}]} = Feed.ingest(ctx.ring, [e1], instance: ctx.bob)
    assert bob_seqs(ctx) == [1, 2, 3]
    for seq <- 1..3, do: assert_receive({:keyring_feed, :entry, %{seq: ^seq}})
    assert {:ok, [{:ok, :duplicate}]} = Feed.ingest(ctx.ring, [e2], instance: ctx.bob)
  end

  test "a forked feed is reported and never merged", ctx do
    [e1, e2, e3] = honest(ctx, 3)
    # The author signs a second entry 2 (and 3) after entry 1: a fork.
    [f2, f3] = Feeds.entries(ctx.alice, ctx.ring, 2, before: [e1], tag: "other branch")
    {:ok, _} = Feed.ingest(ctx.ring, [e1, e2, e3], instance: ctx.bob)

    assert {:ok, [{:ok, :conflicting}, {:ok, :conflicting}]} =
             Feed.ingest(ctx.ring, [f2, f3], instance: ctx.bob)

    author = key(ctx.alice)
    assert_receive {:keyring_feed, :fork, %{author: ^author, seq: 2}}
    assert_receive {:keyring_feed, :fork, %{author: ^author, seq: 3}}
    {:ok, entries} = Feed.query(keyring: ctx.ring, instance: ctx.bob)
    assert Enum.map(entries, & &1.bytes) == [e1, e2, e3]
    {:ok, forks} = Feed.forks(ctx.ring, instance: ctx.bob)
    assert Enum.map(forks, & &1.seq) == [2, 3]
    assert Enum.all?(forks, &(&1.author == author))
    # Reported once: seeing the fork again is a duplicate.
    assert {:ok, [{:ok, :duplicate}]} = Feed.ingest(ctx.ring, [f2], instance: ctx.bob)
    refute_received {:keyring_feed, :fork, _}
  end

  test "a flood of entries that cannot chain is bounded and honest entries still chain", ctx do
    [e1 | rest] = Feeds.entries(ctx.alice, ctx.ring, 4098)

    results =
      rest
      |> Enum.chunk_every(256)
      |> Enum.flat_map(fn batch ->
        {:ok, r} = Feed.ingest(ctx.ring, batch, instance: ctx.bob)
        r
      end)

    assert Enum.count(results, &(&1 == {:ok, :held})) == 4096
    assert List.last(results) == {:error, {:held_full, 4098}}

    assert {:error, {:too_many, 256}} =
             Feed.ingest(ctx.ring, List.duplicate(e1, 257), instance: ctx.bob)

    assert {:ok, [{:ok, :chained}]} = Feed.ingest(ctx.ring, [e1], instance: ctx.bob)
    assert {4097, _} = Feed.head(ctx.ring, key(ctx.alice), instance: ctx.bob)
  end
end
