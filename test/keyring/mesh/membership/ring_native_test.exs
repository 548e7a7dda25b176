defmodule Keyring.Mesh.Membership.RingNativeTest do
  # The ring resource through the NIF: verified once, extended entry by entry,
  # forks resolved, invites and rotation in the log, rule errors as tuples.
  use ExUnit.Case, async: true

  alias Keyring.Native

  @t0 1_700_000_000_000

  defp keypair do
    {:ok, kp} = Native.keypair_generate()
    {kp, Native.keypair_public_key(kp)}
  end

  defp fresh_key, do: :crypto.strong_rand_bytes(32)

  defp summary(ring, now \\ @t0) do
    {:ok, s} = Native.ring_summary(ring, now)
    s
  end

  defp keys(ring), do: Enum.map(summary(ring).members, &elem(&1, 0))

  defp replica(ring) do
    {:ok, [genesis | _]} = Native.ring_entries(ring, [])
    {:ok, r} = Native.ring_open([genesis])
    r
  end

  defp all(ring) do
    {:ok, entries} = Native.ring_entries(ring, [])
    entries
  end

  # Everything a summary says about membership (not the ring's counters).
  defp state(ring), do: Map.drop(summary(ring), [:verified, :pending, :side])

  test "stored entries are verified once at open and never replayed when extended" do
    {root, _} = keypair()
    {:ok, ring} = Native.ring_create(root, "ops", [], @t0)

    for _ <- 1..40,
        do: {:ok, _} = Native.ring_append(ring, root, {:add_member, fresh_key(), 0, []}, @t0)

    assert summary(ring).verified == 0
    entries = all(ring)
    assert length(entries) == 41
    {:ok, reopened} = Native.ring_open(Enum.shuffle(entries))
    assert summary(reopened).verified == 41
    assert state(reopened) == state(ring)

    # A frame of entries it holds, or just the head, costs no signature check.
    {:ok, report} = Native.ring_ingest(reopened, entries, @t0)
    assert %{added: 0, duplicates: 41, rejected: 0} = report
    head = List.last(entries)
    for _ <- 1..500, do: {:ok, %{added: 0}} = Native.ring_ingest(reopened, [head], @t0)
    assert summary(reopened).verified == 41

    # A new entry costs exactly one.
    {:ok, entry} = Native.ring_append(ring, root, {:add_member, fresh_key(), 0, []}, @t0)
    assert {:ok, %{added: 1}} = Native.ring_ingest(reopened, [entry], @t0)
    assert summary(reopened).verified == 42
  end

  test "entries whose parent is missing are held, then added when it arrives" do
    {root, _} = keypair()
    {:ok, ring} = Native.ring_create(root, "ops", [], @t0)
    for _ <- 1..5, do: Native.ring_append(ring, root, {:add_member, fresh_key(), 0, []}, @t0)
    [genesis | rest] = all(ring)
    {:ok, r} = Native.ring_open([genesis])
    assert {:ok, %{added: 0, held: 4}} = Native.ring_ingest(r, tl(rest), @t0)
    assert summary(r).pending == 4
    assert {:ok, %{added: 5}} = Native.ring_ingest(r, [hd(rest)], @t0)
    assert state(r) == state(ring)
  end

  test "a removed admin that forks from an earlier position loses on every replica" do
    {root, _} = keypair()
    {admin, admin_key} = keypair()
    {mallory, mallory_key} = keypair()
    {:ok, honest} = Native.ring_create(root, "ops", [admin_key, mallory_key], @t0)
    forker = replica(honest)
    x = fresh_key()
    {:ok, _} = Native.ring_append(honest, admin, {:add_member, x, 0, []}, @t0 + 1)
    {:ok, _} = Native.ring_append(honest, root, {:remove_member, mallory_key}, @t0 + 2)
    evil = fresh_key()
    {:ok, _} = Native.ring_append(forker, mallory, {:add_member, evil, 0, ["db"]}, @t0 + 1)
    {:ok, _} = Native.ring_append(forker, mallory, {:remove_admin, admin_key}, @t0 + 2)

    for order <- [[honest, forker], [forker, honest]] do
      r = replica(honest)
      for source <- order, do: {:ok, _} = Native.ring_ingest(r, all(source), @t0 + 3)
      assert state(r) == state(honest) |> Map.put(:forks, summary(r).forks)
      assert summary(r).head == summary(honest).head
      refute evil in keys(r)
      refute mallory_key in keys(r)
      assert x in keys(r)
    end

    # The forker's replica moves to the honest branch and says what it lost.
    assert {:ok, report} = Native.ring_ingest(forker, all(honest), @t0 + 3)
    assert %{switched: %{at: 0, abandoned: abandoned}, forks: [_]} = report

    assert [
             {^mallory_key, {:add_member, ^evil, 0, ["db"]}},
             {^mallory_key, {:remove_admin, ^admin_key}}
           ] = abandoned

    assert [%{seq: 0, branches: [_, _], chosen: chosen}] = summary(forker).forks
    assert chosen != nil
  end

  test "a one-time invite spent at one admin is refused by every admin" do
    {root, _} = keypair()
    {a1, k1} = keypair()
    {a2, k2} = keypair()
    {:ok, r1} = Native.ring_create(root, "ops", [k1, k2], @t0)
    r2 = replica(r1)
    %{id: id} = summary(r1)
    token = :crypto.strong_rand_bytes(16)
    {:ok, invite} = Native.invite_create(a1, id, token, @t0 + 60_000, true, "h:1", ["web"])

    assert {:ok, %{one_time: true, max_uses: 1, bound_key: nil}} =
             Native.invite_verify(invite, @t0)

    joiner = fresh_key()

    assert {:ok, {:join, ^joiner, ["web"], ^k1, ^token, 1} = op} =
             Native.ring_admit(r1, invite, joiner, @t0, 100)

    {:ok, _} = Native.ring_append(r1, a1, op, @t0)
    {:ok, _} = Native.ring_ingest(r2, all(r1), @t0)
    assert joiner in keys(r2)

    assert {:error, {:invite_spent, 2, 1, 1}} =
             Native.ring_admit(r2, invite, fresh_key(), @t0, 100)

    # Appending such a join by hand is refused by the log's rule as well.
    crafted = {:join, fresh_key(), [], k1, token, 1}
    assert {:error, {:invite_spent, 2, 1, 1}} = Native.ring_append(r2, a2, crafted, @t0)
  end

  test "invites are capped, revocable, bindable, never renew a member, and budgeted per issuer" do
    {root, _} = keypair()
    {a, ka} = keypair()
    {:ok, ring} = Native.ring_create(root, "ops", [ka], @t0)
    %{id: id} = summary(ring)

    invite = fn token, uses, bound ->
      {:ok, bin} = Native.invite_create(a, id, token, @t0 + 60_000, uses, "h:1", [], bound)
      bin
    end

    join = fn inv, key, budget ->
      with {:ok, op} <- Native.ring_admit(ring, inv, key, @t0, budget),
           do: Native.ring_append(ring, a, op, @t0)
    end

    capped = invite.(<<1::128>>, 2, nil)
    assert {:ok, _} = join.(capped, fresh_key(), 100)
    assert {:ok, _} = join.(capped, fresh_key(), 100)
    assert {:error, {:invite_spent, _, 2, 2}} = join.(capped, fresh_key(), 100)

    revoked = invite.(<<2::128>>, 0, nil)
    {:ok, _} = Native.ring_append(ring, root, {:revoke_invite, ka, <<2::128>>}, @t0)
    assert {:error, {:invite_revoked, _}} = join.(revoked, fresh_key(), 100)

    bound_key = fresh_key()
    bound = invite.(<<3::128>>, 1, bound_key)
    assert {:ok, %{bound_key: ^bound_key}} = Native.invite_verify(bound, @t0)
    assert {:error, :invite_bound_to_other_key} = join.(bound, fresh_key(), 100)
    assert {:ok, _} = join.(bound, bound_key, 100)

    member = fresh_key()
    {:ok, _} = Native.ring_append(ring, a, {:add_member, member, @t0 + 10, ["db"]}, @t0)
    open = invite.(<<4::128>>, 0, nil)
    assert {:error, {:already_member, _}} = join.(open, member, 100)
    assert {:error, {:already_member, _}} = join.(open, ka, 100)

    # ka's invites spent 3 joins this hour already.
    assert {:error, {:join_budget_exhausted, 3, 3}} = join.(open, fresh_key(), 3)
    assert {:ok, _} = join.(open, fresh_key(), 4)
  end

  test "the root role rotates to a new key; the id stays and the old root is no admin" do
    {root, root_key} = keypair()
    {root2, root2_key} = keypair()
    {:ok, ring} = Native.ring_create(root, "ops", [], @t0)

    assert {:error, {:not_the_root, 1}} =
             Native.ring_append(ring, root2, {:rotate_root, root2_key}, @t0)

    {:ok, _} = Native.ring_append(ring, root, {:rotate_root, root2_key}, @t0)
    assert %{id: ^root_key, root: ^root2_key} = summary(ring)
    refute root_key in keys(ring)

    assert {:error, {:not_an_admin, 2}} =
             Native.ring_append(ring, root, {:add_member, fresh_key(), 0, []}, @t0)

    assert {:ok, _} = Native.ring_append(ring, root2, {:remove_member, root_key}, @t0)
    assert root_key in summary(ring).revoked
  end

  test "an admin whose right expires can no longer sign" do
    {root, _} = keypair()
    {a, ka} = keypair()
    {:ok, ring} = Native.ring_create(root, "ops", [], @t0)
    {:ok, _} = Native.ring_append(ring, root, {:add_admin, ka, @t0 + 100}, @t0)
    assert {:ok, _} = Native.ring_append(ring, a, {:add_member, fresh_key(), 0, []}, @t0 + 99)

    assert {:error, {:not_an_admin, 3}} =
             Native.ring_append(ring, a, {:add_member, fresh_key(), 0, []}, @t0 + 100)

    assert Enum.any?(summary(ring, @t0 + 99).members, &match?({^ka, _, _, true}, &1))
    refute Enum.any?(summary(ring, @t0 + 100).members, &match?({^ka, _, _, _}, &1))
  end

  test "peers exchange heads and send only the entries the other lacks" do
    {root, _} = keypair()
    {a, ka} = keypair()
    {:ok, r1} = Native.ring_create(root, "ops", [ka], @t0)
    for _ <- 1..6, do: Native.ring_append(r1, root, {:add_member, fresh_key(), 0, []}, @t0)
    {:ok, r2} = Native.ring_open(all(r1))
    for _ <- 1..3, do: Native.ring_append(r1, root, {:add_member, fresh_key(), 0, []}, @t0)
    {:ok, _} = Native.ring_append(r2, a, {:add_member, fresh_key(), 0, []}, @t0)

    {:ok, %{locator: loc2, heads: [h2], length: 8}} = Native.ring_heads(r2)
    {:ok, %{locator: loc1}} = Native.ring_heads(r1)
    {:ok, to_r2} = Native.ring_entries(r1, loc2)
    {:ok, to_r1} = Native.ring_entries(r2, loc1)
    assert {length(to_r2), length(to_r1)} == {3, 1}
    {:ok, _} = Native.ring_ingest(r2, to_r2, @t0)
    {:ok, %{forks: [_]}} = Native.ring_ingest(r1, to_r1, @t0)
    assert state(r1) == state(r2)
    {:ok, %{heads: heads1}} = Native.ring_heads(r1)
    {:ok, %{heads: heads2}} = Native.ring_heads(r2)
    assert Enum.sort(heads1) == Enum.sort(heads2)
    assert h2 in heads1
  end

  test "refusals name the rule; bad input never raises" do
    {root, _} = keypair()
    {stranger, sk} = keypair()
    {:ok, ring} = Native.ring_create(root, "ops", [], @t0)

    assert {:error, {:not_an_admin, 1}} =
             Native.ring_append(ring, stranger, {:add_member, sk, 0, []}, @t0)

    assert {:error, {:malformed, "operation", _}} =
             Native.ring_append(ring, root, {:nope, sk}, @t0)

    assert {:error, {:malformed, "key", _}} =
             Native.ring_append(ring, root, {:remove_member, "short"}, @t0)

    assert {:error, {:invalid_operation, 1, _}} =
             Native.ring_append(ring, root, {:remove_member, sk}, @t0)

    {:ok, entry} = Native.ring_append(ring, root, {:add_member, sk, 0, []}, @t0)
    {:ok, other} = Native.ring_open([hd(all(ring))])
    <<body::binary-size(byte_size(entry) - 1), last>> = entry
    forged = body <> <<Bitwise.bxor(last, 1)>>

    future = fn ->
      {:ok, e} =
        Native.ring_append(ring, root, {:add_member, fresh_key(), 0, []}, @t0 + 3_600_000)

      e
    end

    assert {:ok, %{rejected: 3, errors: errors}} =
             Native.ring_ingest(other, ["garbage", forged, future.()], @t0)

    assert [{:malformed, "entry", _}, {:bad_signature, 1}, {:from_the_future, 2}] = errors
    assert {:error, {:malformed, "entry", _}} = Native.ring_open(["garbage"])
    assert {:error, :no_genesis} = Native.ring_open([])
    assert {:error, {:malformed, "hash", _}} = Native.ring_entries(ring, ["x"])
    assert {:error, {:malformed, "invite", _}} = Native.ring_admit(ring, "", sk, @t0, 1)
  end
end
