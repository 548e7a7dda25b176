defmodule Keyring.Mesh.RingsTest do
  # The mesh plane's functional core, without sockets, files or processes:
  # each operation returns the new state and the effects to carry out.
  use ExUnit.Case, async: true

  alias Keyring.Mesh.{Log, Rings}
  alias Keyring.Native

  @now 1_700_000_000_000

  defp keypair do
    {:ok, kp} = Native.keypair_generate()
    kp
  end

  defp node_state do
    kp = keypair()
    {kp, Rings.new(Native.keypair_public_key(kp))}
  end

  defp create(state, name \\ "ops") do
    root = keypair()
    {:ok, id, state, effects} = Rings.create(state, name, root, @now)
    {id, state, effects}
  end

  defp invite(issuer_kp, ring, opts \\ []) do
    {:ok, bytes} =
      Native.invite_create(
        issuer_kp,
        ring,
        Keyword.get(opts, :token, :crypto.strong_rand_bytes(16)),
        @now + 60_000,
        Keyword.get(opts, :one_time, true),
        "127.0.0.1:1 127.0.0.1:2",
        Keyword.get(opts, :roles, [])
      )

    bytes
  end

  test "create makes this node the first admin and asks to save, announce and publish" do
    {_kp, state} = node_state()
    {id, state, effects} = create(state)
    {:ok, ring} = Rings.fetch(state, id)
    assert Log.admin?(ring.log, state.self)
    assert ring.root

    assert [{:root_key, ^id, _root}, {:save, ^ring}, {:members, ^id, members}, {:event, info}] =
             effects

    assert {:membership, %{name: "ops"}} = info
    # The root key (the keyring id) and this node, both admins, never expiring.
    assert Enum.sort(members) == Enum.sort([{id, 0}, {state.self, 0}])
  end

  test "an admitted joiner is added, saved, announced and pushed; a spent invite is refused" do
    {kp, state} = node_state()
    {id, state, _} = create(state)
    joiner = Native.keypair_public_key(keypair())
    bytes = invite(kp, id, roles: ["web"])

    {:ok, entries, state, effects} = Rings.admit(state, joiner, bytes, kp, @now)
    assert length(entries) == 2
    assert Enum.map(effects, &elem(&1, 0)) == [:save, :members, :event, :push_log]
    assert %{^joiner => %{roles: ["web"], admin: false}} = Rings.view(state)[id].members

    other = Native.keypair_public_key(keypair())
    assert {:error, :invite_spent} = Rings.admit(state, other, bytes, kp, @now)
    # An existing member cannot use an invite to change its roles or expiry.
    assert {:error, :already_member} =
             Rings.admit(state, joiner, invite(kp, id, roles: ["admin-ish"]), kp, @now)
  end

  test "only admins issue invites; a non-admin's invite is refused at admission" do
    {kp, state} = node_state()
    {id, state, _} = create(state)
    assert :ok = Rings.check_invite(state, id)
    stranger = keypair()

    assert {:error, :issuer_not_admin} =
             Rings.admit(
               state,
               Native.keypair_public_key(keypair()),
               invite(stranger, id),
               kp,
               @now
             )

    {_kp2, other_node} = node_state()
    {:ok, _info, other_node, _} = Rings.import(other_node, Log.entries(state.rings[id].log), @now)
    assert {:error, :not_an_admin} = Rings.check_invite(other_node, id)
  end

  test "a pushed log that extends ours is taken once; a replay adds nothing" do
    {kp, state} = node_state()
    {id, state, _} = create(state)
    {_kp, follower} = node_state()
    {:ok, _info, follower, _} = Rings.import(follower, Log.entries(state.rings[id].log), @now)

    {:ok, _info, state, _} =
      Rings.change(state, id, kp, {:add_member, follower.self, 0, ["db"]}, @now)

    entries = Log.entries(state.rings[id].log)

    assert {:ok, 1, follower, [{:save, _}, {:members, ^id, _}, {:event, _}]} =
             Rings.merge(follower, id, entries, @now)

    assert {:ok, 0, ^follower, []} = Rings.merge(follower, id, entries, @now)
    assert Rings.view(follower)[id].members[follower.self].roles == ["db"]
  end

  test "joined checks the log is for the invited keyring and admits us" do
    {kp, admin} = node_state()
    {id, admin, _} = create(admin)
    {_kp, joiner} = node_state()
    bytes = invite(kp, id)
    {:ok, entries, _admin, _} = Rings.admit(admin, joiner.self, bytes, kp, @now)

    assert {:ok, ^id, joiner, effects} = Rings.joined(joiner, entries, id, @now)
    assert Enum.map(effects, &elem(&1, 0)) == [:save, :members, :event]
    assert Map.keys(Rings.view(joiner)) == [id]

    {_kp, someone} = node_state()
    assert {:error, :not_admitted} = Rings.joined(someone, entries, id, @now)
    assert {:error, :wrong_keyring} = Rings.joined(someone, entries, someone.self, @now)
  end

  test "leave forgets the keyring; unknown keyrings answer :not_found" do
    {kp, state} = node_state()
    {id, state, _} = create(state)
    assert {:ok, :ok, state, [{:forget, ^id}]} = Rings.leave(state, id)
    assert Rings.view(state) == %{}
    assert {:error, :not_found} = Rings.leave(state, id)
    assert {:error, :not_found} = Rings.change(state, id, kp, {:remove_member, id}, @now)
  end

  test "restore verifies each stored log and skips those that do not verify" do
    {_kp, state} = node_state()
    {id, state, _} = create(state)
    good = %{id: id, entries: Log.entries(state.rings[id].log), root: false, spent: []}
    bad = %{id: <<1::256>>, entries: ["garbage"], root: false, spent: []}
    {_kp, fresh} = node_state()
    {restored, effects, failed} = Rings.restore(fresh, [good, bad], @now)
    assert Map.keys(restored.rings) == [id]
    assert [{:members, ^id, _}] = effects
    assert [{<<1::256>>, _reason}] = failed
  end
end
