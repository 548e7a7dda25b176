defmodule Keyring.Adversarial.LogGrowthTest do
  # Attack (issue 8, item 9): a reusable invite let one party add 20 keys/s;
  # every member re-verified everything, and at 100,000 entries nothing, not
  # even a revocation, could be appended. Now: invites carry a use cap
  # counted from the log, each issuer has a join budget per hour counted from
  # the log (so every admin applies both), entries are verified once, and
  # revocations are accepted at any depth (the depth cap of 100,000 entries
  # that grow the log is proven in native/keyring_core/tests/membership_scale.rs).
  use ExUnit.Case, async: false

  import Keyring.Test.{Eventually, Instances}
  import Keyring.Test.RawJoin

  alias Keyring.{Native, Ring}

  @budget 4

  defp two_admins do
    opts = [mesh: [joins_per_issuer_per_hour: @budget]]
    [a, a2] = [start_instance(:a, opts), start_instance(:a2, opts)]
    # A2's own join spends one of A's budget.
    ring = ring_with(a, [a2])
    {:ok, _} = Ring.add_admin(ring, key(a2), instance: a)
    in_sync(ring, [a, a2])
    {a, a2, ring}
  end

  defp in_sync(ring, instances) do
    eventually(fn ->
      instances |> Enum.map(&Ring.info(ring, instance: &1)) |> Enum.uniq() |> length() == 1
    end)
  end

  test "a reusable invite used beyond its max_uses is refused at every admin" do
    {a, a2, ring} = two_admins()
    {:ok, invite} = Ring.invite(ring, instance: a, max_uses: 2)
    assert {:ok, ^ring} = Keyring.join(invite, instance: start_instance(:b))
    in_sync(ring, [a, a2])
    assert {:ok, [_ | _]} = join_at(start_instance(:c), a2, invite)
    in_sync(ring, [a, a2])

    d = start_instance(:d)
    assert {:error, {:refused, :bad_invite}} = join_at(d, a, invite)
    assert {:error, {:refused, :bad_invite}} = join_at(d, a2, invite)
  end

  test "joins beyond the issuer's hourly budget are refused at every admin; other issuers are not affected" do
    {a, a2, ring} = two_admins()
    {:ok, open} = Ring.invite(ring, instance: a, max_uses: 0)

    for {joiner, at} <- [{:b, a}, {:c, a2}, {:d, a}] do
      assert {:ok, [_ | _]} = join_at(start_instance(joiner), at, open)
      in_sync(ring, [a, a2])
    end

    e = start_instance(:e)
    assert {:error, {:refused, :bad_invite}} = join_at(e, a, open)
    assert {:error, {:refused, :bad_invite}} = join_at(e, a2, open)

    # A2's invites are counted against A2's budget.
    {:ok, own} = Ring.invite(ring, instance: a2)
    assert {:ok, ^ring} = Keyring.join(own, instance: e)
  end

  @entries 5_000

  test "a revocation is appended and spread promptly on a large log" do
    [a, b] = [start_instance(:a), start_instance(:b)]
    # A log of #{@entries} members, built offline by its root; A and B in it.
    {:ok, root} = Native.keypair_generate()
    now = System.os_time(:millisecond)
    {:ok, log} = Native.ring_create(root, "big", [key(a)], now)
    keys = for _ <- 1..@entries, do: :crypto.strong_rand_bytes(32)
    for k <- keys, do: {:ok, _} = Native.ring_append(log, root, {:add_member, k, 0, []}, now)
    {:ok, _} = Native.ring_append(log, root, {:add_member, key(b), 0, []}, now)
    {:ok, entries} = Native.ring_entries(log, [])
    {:ok, %{id: ring, length: length}} = Ring.import_log(entries, instance: a)
    {:ok, _} = Ring.import_log(entries, instance: b)
    assert length == @entries + 2

    {b_addr, _} = Ring.addresses(instance: b)
    :ok = Keyring.RPC.connect(id(b), b_addr, instance: a, keyring: ring)
    eventually(fn -> key(b) in connected(a, ring) end)

    victim = Enum.random(keys)
    t = System.monotonic_time(:millisecond)
    {:ok, info} = Ring.remove_member(ring, victim, instance: a)
    appended = System.monotonic_time(:millisecond) - t
    assert victim in info.revoked

    eventually(
      fn ->
        {:ok, ib} = Ring.info(ring, instance: b)
        victim in ib.revoked
      end,
      5_000,
      "B has the revocation"
    )

    spread = System.monotonic_time(:millisecond) - t

    IO.puts(
      "log growth: revocation on a #{length}-entry log appended in #{appended} ms, " <>
        "at the other member in #{spread} ms"
    )

    assert appended < 2_000
  end
end
