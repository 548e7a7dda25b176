defmodule Keyring.Adversarial.InviteReplayTest do
  # Attack (issue 8, item 11): invites were bearer tokens and "one-time" was
  # per admin node: a one-time invite redeemed at admin A was accepted again
  # at admin A2 by a random key; invites could not be revoked; an expiring
  # member renewed itself with any invite. Now spent and revoked invites are
  # recorded in the log (every admin counts from it), an invite may be bound
  # to the joiner's key, and an invite never changes an existing member. The
  # replays below present invites by hand at the *other* admin's join
  # endpoint (Keyring.join would only contact the issuer).
  use ExUnit.Case, async: false

  import Keyring.Test.{Eventually, Instances}
  import Keyring.Test.RawJoin

  alias Keyring.Ring

  setup do
    [a, a2] = [start_instance(:a), start_instance(:a2)]
    ring = ring_with(a, [a2])
    {:ok, _} = Ring.add_admin(ring, key(a2), instance: a)
    in_sync(ring, [a, a2])
    %{a: a, a2: a2, ring: ring}
  end

  defp in_sync(ring, instances) do
    eventually(fn ->
      instances |> Enum.map(&Ring.info(ring, instance: &1)) |> Enum.uniq() |> length() == 1
    end)
  end

  defp member(ring, instance, key) do
    {:ok, info} = Ring.info(ring, instance: instance)
    Enum.find(info.members, &(&1.key == key))
  end

  test "a one-time invite redeemed at admin A is refused at admin A2", %{a: a, a2: a2, ring: ring} do
    {:ok, invite} = Ring.invite(ring, instance: a)
    b = start_instance(:b)
    assert {:ok, ^ring} = Keyring.join(invite, instance: b)
    in_sync(ring, [a, a2])

    x = start_instance(:x)
    assert {:error, {:refused, :bad_invite}} = join_at(x, a2, invite)
    assert {:error, {:refused, :bad_invite}} = join_at(x, a, invite)
    assert member(ring, a2, key(x)) == nil

    # Honest joins still work at both admins.
    {:ok, fresh} = Ring.invite(ring, instance: a)
    assert {:ok, [_ | _]} = join_at(start_instance(:h), a2, fresh)
  end

  test "a revoked invite is refused at every admin", %{a: a, a2: a2, ring: ring} do
    {:ok, invite} = Ring.invite(ring, instance: a, max_uses: 0)
    {:ok, _} = Ring.revoke_invite(ring, invite, instance: a)
    in_sync(ring, [a, a2])
    x = start_instance(:x)
    assert {:error, {:refused, :bad_invite}} = join_at(x, a2, invite)
    assert {:error, {:refused, :bad_invite}} = Keyring.join(invite, instance: x)
  end

  test "a bound invite is refused for any other key, at every admin", %{a: a, a2: a2, ring: ring} do
    d = start_instance(:d)
    {:ok, invite} = Ring.invite(ring, instance: a, bind: id(d))
    x = start_instance(:x)
    assert {:error, {:refused, :bad_invite}} = join_at(x, a2, invite)
    assert {:error, {:refused, :bad_invite}} = join_at(x, a, invite)
    assert {:ok, [_ | _]} = join_at(d, a2, invite)
  end

  test "an invite never changes an existing member's roles or expiry", %{a: a, a2: a2, ring: ring} do
    b = start_instance(:b)
    {:ok, first} = Ring.invite(ring, instance: a, roles: ["web"], ttl: 60_000)
    {:ok, ^ring} = Keyring.join(first, instance: b)
    in_sync(ring, [a, a2])
    before = member(ring, a, key(b))

    {:ok, renew} = Ring.invite(ring, instance: a2, max_uses: 0, roles: ["admin", "ops"])
    assert {:error, {:refused, :bad_invite}} = join_at(b, a2, renew)
    assert {:error, {:refused, :bad_invite}} = join_at(b, a, renew)
    in_sync(ring, [a, a2])
    assert member(ring, a, key(b)) == before
    assert member(ring, a2, key(b)) == before
  end
end
