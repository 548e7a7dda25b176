defmodule Keyring.Adversarial.ForkAfterRevocationTest do
  # Attack (issue 8, item 10): an admin R, removed by admin A while cut off
  # from A, reaches a member C first with a competing entry at the same
  # position (it adds a key Z) and keeps access there. Now: anti-entropy
  # brings A's branch to C through a third member B (C never talks to A),
  # the fork rule (a revocation dominates what the revoked signer made at
  # or after its position) picks A's branch on every replica, `:fork`
  # fires, and C refuses R while it still serves B.
  use ExUnit.Case, async: false

  import Keyring.Test.{Eventually, Instances}

  alias Keyring.Ring

  @interval 300

  defp info(ring, instance) do
    {:ok, info} = Ring.info(ring, instance: instance)
    info
  end

  defp members(ring, instance), do: Enum.map(info(ring, instance).members, & &1.key)

  test "a removed admin's competing branch on an offline member is resolved everywhere" do
    opts = [mesh: [anti_entropy_ms: @interval]]
    [a, r, b, c] = for t <- [:a, :r, :b, :c], do: start_instance(t, opts)
    ring = ring_with(a, [r, b, c])
    {:ok, _} = Ring.add_admin(ring, key(r), instance: a)
    len = info(ring, a).length
    eventually(fn -> Enum.all?([r, b, c], &(info(ring, &1).length == len)) end)

    # B and R each link to C.
    {c_addr, _} = Ring.addresses(instance: c)
    :ok = Keyring.RPC.connect(id(c), c_addr, instance: b, keyring: ring)
    :ok = Keyring.RPC.connect(id(c), c_addr, instance: r, keyring: ring)
    eventually(fn -> key(b) in connected(c, ring) and key(r) in connected(c, ring) end)

    # A is cut off from C and R (closed on purpose: nobody redials).
    for {x, y} <- [{a, c}, {a, r}] do
      Keyring.Native.mesh_disconnect(mesh(x), ring, key(y))
      Keyring.Native.mesh_disconnect(mesh(y), ring, key(x))
    end

    eventually(fn -> connected(a, ring) == [key(b)] and key(a) not in connected(c, ring) end)
    assert key(b) not in connected(r, ring)

    for x <- [a, b, c], do: :ok = Keyring.Mesh.subscribe(instance: x)

    # R, not yet knowing, adds Z; its push reaches C (and nobody else).
    z = :crypto.strong_rand_bytes(32)
    {:ok, _} = Ring.add_member(ring, z, instance: r, roles: ["intruder"])
    eventually(fn -> z in members(ring, c) end, 5_000, "C took R's entry")

    # A removes R at the same position; the push reaches B only.
    {:ok, _} = Ring.remove_member(ring, key(r), instance: a)
    eventually(fn -> key(r) not in members(ring, b) end, 5_000, "B has the removal")

    # Anti-entropy between B and C (and A and B) resolves the fork the
    # same way everywhere: R and Z are out.
    eventually(
      fn ->
        [ia, ib, ic] = for x <- [a, b, c], do: info(ring, x)

        ia.head == ib.head and ib.head == ic.head and ia.members == ic.members and
          key(r) not in members(ring, c) and z not in members(ring, c)
      end,
      10_000,
      "all honest replicas on A's branch"
    )

    assert_receive {:keyring_mesh, :fork, %{keyring: ^ring}}, 5_000
    ic = info(ring, c)
    assert key(r) in ic.revoked
    assert ic.forks != []

    # C refuses R; it still serves B.
    :ok = Keyring.expose(:ping, fn _, _ -> :pong end, instance: c, keyring: ring)
    assert {:error, _} = Keyring.call(id(c), :ping, nil, instance: r, keyring: ring)
    assert {:ok, :pong} = Keyring.call(id(c), :ping, nil, instance: b, keyring: ring)
  end
end
