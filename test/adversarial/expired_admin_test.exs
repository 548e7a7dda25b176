defmodule Keyring.Adversarial.ExpiredAdminTest do
  # Attack (issue 8, item 18): admins never expired, even when their entry
  # said so. Now an admin right granted with `:ttl`/`:expires_at` ends then
  # on every node: the former admin can no longer change the log, and the
  # invites it issued while it was an admin are refused at every admin.
  use ExUnit.Case, async: false

  import Keyring.Test.{Eventually, Instances}
  import Keyring.Test.RawJoin

  alias Keyring.Ring

  @ttl 1_500

  test "an admin whose right expired can no longer change the log or admit anyone" do
    [a, a2] = [start_instance(:a), start_instance(:a2)]
    ring = ring_with(a, [a2])
    {:ok, _} = Ring.add_admin(ring, key(a2), instance: a, ttl: @ttl)

    eventually(fn ->
      {:ok, info} = Ring.info(ring, instance: a2)
      Enum.any?(info.members, &(&1.key == key(a2) and &1.admin))
    end)

    # While an admin, A2 issues an invite (and it works).
    {:ok, invite} = Ring.invite(ring, instance: a2, max_uses: 0)
    assert {:ok, ^ring} = Keyring.join(invite, instance: start_instance(:early))

    Process.sleep(@ttl + 200)

    assert {:error, {:not_an_admin, _}} =
             Ring.add_member(ring, :crypto.strong_rand_bytes(32), instance: a2)

    late = start_instance(:late)
    assert {:error, {:refused, :bad_invite}} = join_at(late, a2, invite)
    assert {:error, {:refused, :bad_invite}} = join_at(late, a, invite)

    # The remaining admin still admits with its own invites.
    {:ok, own} = Ring.invite(ring, instance: a)
    assert {:ok, ^ring} = Keyring.join(own, instance: late)
  end
end
