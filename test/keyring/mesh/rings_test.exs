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
        Keyword.get(opts, :max_uses, 1),
        "127.0.0.1:1 127.0.0.1:2",
        Keyword.get(opts, :roles, []),
        nil
      )

    bytes
  end

  defp admit(state, joiner, bytes, kp), do: Rings.admit(state, joiner, bytes, kp, @now, 100)

  test "create makes this node the first admin and asks to save, announce and publish" do
    {_kp, state} = node_state()
    {id, state, effects} = create(state)
    {:ok, ring} = Rings.fetch(state, id)
    assert Log.admin?(ring.log, state.self)
    assert ring.root
    entries = Log.entries(ring.log)

    assert [
             {:root_key, ^id, _root, false},
             {:save, ^id, true, ^entries},
             {:members, ^id, members},
             {:event, info}
           ] = effects

    assert {:membership, %{name: "ops"}} = info
    # The root key (the keyring id) and this node, both admins, never expiring.
    assert Enum.sort(members) == Enum.sort([{id, 0}, {state.self, 0}])
  end

  test "an admitted joiner is added, saved, announced and pushed; a spent invite is refused" do
    {kp, state} = node_state()
    {id, state, _} = create(state)
    joiner = Native.keypair_public_key(keypair())
    bytes = invite(kp, id, roles: ["web"])

    {:ok, entries, state, effects} = admit(state, joiner, bytes, kp)
    assert length(entries) == 2
    assert Enum.map(effects, &elem(&1, 0)) == [:save, :members, :event, :push_log]
    # Only the new entry is saved and pushed, not the whole log.
    assert [{:save, ^id, true, [join]}, _, _, {:push_log, ^id, [join]}] = effects
    assert %{^joiner => %{roles: ["web"], admin: false}} = Rings.view(state)[id].members

    other = Native.keypair_public_key(keypair())
    assert {:error, {:invite_spent, _, 1, 1}} = admit(state, other, bytes, kp)
    # An existing member cannot use an invite to change its roles or expiry.
    assert {:error, {:already_member, _}} =
             admit(state, joiner, invite(kp, id, roles: ["ops"], max_uses: 0), kp)
  end

  test "only admins issue invites; a non-admin's invite is refused at admission" do
    {kp, state} = node_state()
    {id, state, _} = create(state)
    assert :ok = Rings.check_invite(state, id)
    stranger = keypair()
    joiner = Native.keypair_public_key(keypair())
    assert {:error, :issuer_not_admin} = admit(state, joiner, invite(stranger, id), kp)

    {kp2, other_node} = node_state()

    {:ok, _info, other_node, _} =
      Rings.import(other_node, Log.entries(state.rings[id].log), kp2, @now)

    assert {:error, :not_an_admin} = Rings.check_invite(other_node, id)
  end

  test "a pushed log that extends ours is taken once; a replay adds nothing" do
    {kp, state} = node_state()
    {id, state, _} = create(state)
    {fkp, follower} = node_state()

    {:ok, _info, follower, _} =
      Rings.import(follower, Log.entries(state.rings[id].log), fkp, @now)

    {:ok, _info, state, _} =
      Rings.change(state, id, kp, {:add_member, follower.self, 0, ["db"]}, @now)

    entries = Log.entries(state.rings[id].log)
    new = List.last(entries)

    assert {:ok, %{added: 1}, follower, [{:save, ^id, false, [^new]}, {:members, ^id, _}, _]} =
             Rings.merge(follower, id, entries, fkp, @now)

    assert {:ok, %{added: 0}, ^follower, []} = Rings.merge(follower, id, entries, fkp, @now)
    assert Rings.view(follower)[id].members[follower.self].roles == ["db"]
  end

  test "joined checks the log is for the invited keyring and admits us" do
    {kp, admin} = node_state()
    {id, admin, _} = create(admin)
    {jkp, joiner} = node_state()
    bytes = invite(kp, id)
    {:ok, entries, _admin, _} = admit(admin, joiner.self, bytes, kp)

    assert {:ok, ^id, joiner, effects} = Rings.joined(joiner, entries, id, jkp, @now)
    assert Enum.map(effects, &elem(&1, 0)) == [:save, :members, :event]
    assert Map.keys(Rings.view(joiner)) == [id]

    {skp, someone} = node_state()
    assert {:error, :not_admitted} = Rings.joined(someone, entries, id, skp, @now)
    assert {:error, :wrong_keyring} = Rings.joined(someone, entries, someone.self, skp, @now)
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
    good = %{id: id, entries: Log.entries(state.rings[id].log), root: false}
    bad = %{id: <<1::256>>, entries: ["garbage"], root: false}
    {_kp, fresh} = node_state()
    {restored, effects, failed} = Rings.restore(fresh, [good, bad], @now)
    assert Map.keys(restored.rings) == [id]
    assert [{:members, ^id, _}] = effects
    assert [{<<1::256>>, _reason}] = failed
  end

  test "root rotation needs the root key and hands it on; the id stays" do
    {kp, state} = node_state()
    root = keypair()
    {:ok, id, state, _} = Rings.create(state, "ops", root, @now)
    new_root = keypair()
    new_key = Native.keypair_public_key(new_root)

    assert {:ok, info, state, [{:root_key, ^id, ^new_root, true} | _]} =
             Rings.rotate_root(state, id, root, new_root, @now + 1)

    assert info.root == new_key and info.id == id

    # The old root signs nothing any more; a node without the root key cannot rotate.
    assert {:error, _} = Rings.change(state, id, root, {:add_member, <<9::256>>, 0, []}, @now + 2)
    {fkp, follower} = node_state()
    {:ok, _, follower, _} = Rings.import(follower, Log.entries(state.rings[id].log), fkp, @now)
    assert {:error, :not_the_root} = Rings.rotate_root(follower, id, kp, keypair(), @now + 2)
  end

  test "a fork is reported and our own losing operations are signed again on the winning branch" do
    {kp, state} = node_state()
    root = keypair()
    {:ok, id, state, _} = Rings.create(state, "ops", root, @now)
    genesis = Log.entries(state.rings[id].log)
    # Another admin's replica, holding only the genesis: the root adds a member there.
    {okp, other} = node_state()
    {:ok, _, other, _} = Rings.import(other, genesis, okp, @now)
    {:ok, _, other, _} = Rings.change(other, id, root, {:add_member, <<7::256>>, 0, []}, @now + 1)
    # Meanwhile this node (an admin, not the root) adds another member.
    mine = {:add_member, <<8::256>>, 0, []}
    {:ok, _, state, _} = Rings.change(state, id, kp, mine, @now + 1)

    {:ok, report, state, effects} =
      Rings.merge(state, id, Log.entries(other.rings[id].log), kp, @now + 2)

    assert report.forks != []
    assert {:event, {:fork, ^id, _}} = Enum.find(effects, &match?({:event, {:fork, _, _}}, &1))
    # The root's branch won; our op was signed again on top of it and pushed.
    members = Rings.view(state)[id].members
    assert Map.has_key?(members, <<7::256>>) and Map.has_key?(members, <<8::256>>)
    assert Enum.any?(effects, &match?({:push_log, ^id, [_]}, &1))
  end
end
