defmodule Keyring.Adversarial.RefAttacksTest do
  # Attacks on signed refs (issue 11): a replayed older ref, a ref signed by
  # the wrong key, two refs at one seq, a ref from a non-member. The held ref
  # never moves backwards and honest newer refs are still taken.
  use ExUnit.Case, async: false

  import Keyring.Test.Instances
  alias Keyring.Refs
  alias Keyring.Test.Feeds

  setup do
    [alice, bob, mallory] = [
      start_instance(:alice),
      start_instance(:bob),
      start_instance(:mallory)
    ]

    ring = ring_with(alice, [bob])
    {:ok, v1} = Keyring.Store.put("v1", instance: alice)
    {:ok, v2} = Keyring.Store.put("v2", instance: alice)
    %{alice: alice, bob: bob, mallory: mallory, ring: ring, v1: v1, v2: v2}
  end

  defp held(ctx) do
    {:ok, ref} = Refs.get(ctx.ring, key(ctx.alice), "site", instance: ctx.bob)
    {ref.seq, ref.root}
  end

  # The refs are signed here rather than published: a published ref is also
  # pushed to bob over the mesh at once (replication), and these tests
  # deliver the bytes themselves, in the order the attack needs.
  test "a replayed older ref never replaces a newer one", ctx do
    r1 = Feeds.ref(ctx.alice, ctx.ring, "site", ctx.v1, 1)
    r2 = Feeds.ref(ctx.alice, ctx.ring, "site", ctx.v2, 2)

    assert {:ok, [{:ok, :new}]} = Refs.ingest(ctx.ring, [r2], instance: ctx.bob)
    assert {:ok, [{:error, {:stale, 1, 2}}]} = Refs.ingest(ctx.ring, [r1], instance: ctx.bob)

    assert held(ctx) == {2, ctx.v2}
    assert {:ok, [{:ok, :duplicate}]} = Refs.ingest(ctx.ring, [r2], instance: ctx.bob)
    r3 = Feeds.ref(ctx.alice, ctx.ring, "site", ctx.v1, 3)
    assert {:ok, [{:ok, {:replaces, 2}}]} = Refs.ingest(ctx.ring, [r3], instance: ctx.bob)
    assert held(ctx) == {3, ctx.v1}
  end

  test "a ref signed by the wrong key or by a non-member is refused", ctx do
    r1 = Feeds.ref(ctx.alice, ctx.ring, "site", ctx.v1, 1)
    forged = Feeds.ref(ctx.mallory, ctx.ring, "site", ctx.v2, 9)

    assert {:ok, [{:error, :bad_signature}, {:error, :not_a_member}]} =
             Refs.ingest(ctx.ring, [Feeds.tamper(r1), forged], instance: ctx.bob)

    assert {:error, :not_found} = Refs.get(ctx.ring, key(ctx.alice), "site", instance: ctx.bob)
    assert {:ok, [{:ok, :new}]} = Refs.ingest(ctx.ring, [r1], instance: ctx.bob)
  end

  test "two different refs at one seq are refused as an equivocation", ctx do
    a = Feeds.ref(ctx.alice, ctx.ring, "site", ctx.v1, 5)
    b = Feeds.ref(ctx.alice, ctx.ring, "site", ctx.v2, 5)

    assert {:ok, [{:ok, :new}, {:error, {:equivocation, 5}}]} =
             Refs.ingest(ctx.ring, [a, b], instance: ctx.bob)

    assert held(ctx) == {5, ctx.v1}
  end

  test "a ref for another keyring is refused", ctx do
    other = ring_with(ctx.mallory, [ctx.alice, ctx.bob])
    elsewhere = Feeds.ref(ctx.alice, other, "site", ctx.v1, 1)

    assert {:ok, [{:error, :wrong_keyring}]} =
             Refs.ingest(ctx.ring, [elsewhere], instance: ctx.bob)
  end
end
