defmodule Keyring.Test.RawJoin do
  @moduledoc false
  # A join sent by hand: `joiner`'s mesh presents `invite` (text) at the join
  # endpoint of `admin` (any admin, whoever issued the invite), as an
  # attacker replaying an invite would. Answers `{:ok, entries}` or
  # `{:error, reason}`.
  import Keyring.Test.Instances

  def join_at(joiner, admin, invite, timeout \\ 5_000) do
    {:ok, bytes} = Keyring.Mesh.Invite.decode(invite)
    {_mesh_addr, join_addr} = Keyring.Ring.addresses(instance: admin)
    ref = make_ref()
    :ok = Keyring.Native.mesh_join(mesh(joiner), ref, join_addr, key(admin), bytes, timeout)

    receive do
      {:keyring_reply, ^ref, result} -> result
    after
      timeout + 1_000 -> {:error, :no_answer}
    end
  end
end
