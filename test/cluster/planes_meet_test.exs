defmodule Keyring.Cluster.PlanesMeetTest do
  # The two planes meet: nodes of one cluster (Erlang distribution) publish
  # their mesh address and keyrings in presence, and members of a shared
  # keyring dial each other there, even if they never called each other.
  use ExUnit.Case, async: false
  @moduletag :cluster

  import Keyring.Test.Eventually
  alias Keyring.Test.Peers

  setup do
    peers = Peers.start_many(:planes, 3)
    on_exit(fn -> Peers.stop_all(peers) end)
    %{peers: peers}
  end

  test "members that meet in presence link up; Ring.connected and presence agree", %{
    peers: [a, b, c] = peers
  } do
    {:ok, ring} = Peers.call(a, Keyring.Ring, :create, ["ops"])

    for p <- [b, c] do
      {:ok, invite} = Peers.call(a, Keyring.Ring, :invite, [ring])
      assert {:ok, ^ring} = Peers.call(p, Keyring, :join, [invite])
    end

    c_key = Peers.call(c, Keyring.Identity, :public_key, [])
    b_key = Peers.call(b, Keyring.Identity, :public_key, [])
    refute c_key in Peers.call(b, Keyring.Ring, :connected, [ring])

    # Now the operator connects the cluster plane.
    Peers.connect_all(peers)

    eventually(fn -> c_key in Peers.call(b, Keyring.Ring, :connected, [ring]) end, 20_000, "b-c")
    assert b_key in Peers.call(c, Keyring.Ring, :connected, [ring])

    # What presence says about c is what b's mesh used.
    {c_mesh, _} = Peers.call(c, Keyring.Ring, :addresses, [])
    c_id = Peers.call(c, Keyring.Identity, :node_id, [])
    entry = eventually(fn -> Peers.call(b, Keyring.Coordinator, :presence, [[]])[c_id] end)
    assert entry.mesh_addr == c_mesh
    assert entry.keyrings == [ring]
  end
end
