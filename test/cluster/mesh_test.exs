defmodule Keyring.Cluster.MeshTest do
  # Two real VMs that are NOT connected by Erlang distribution: everything
  # between them goes over the QUIC mesh.
  use ExUnit.Case, async: false
  @moduletag :cluster

  alias Keyring.Test.Peers

  setup do
    # Fresh data dirs: Peers.tmp_dir/1 can repeat across runs (unique
    # integers restart with the VM) and keyrings persist in the store.
    u = "#{System.os_time(:nanosecond)}_#{System.unique_integer([:positive])}"
    dirs = for n <- [:a, :b], do: Path.join(System.tmp_dir!(), "keyring-mesh-#{n}-#{u}")

    [a, b] =
      for {n, dir} <- Enum.zip([:a, :b], dirs), do: Peers.start(:"mesh_#{n}_#{u}", dir: dir)

    on_exit(fn ->
      Peers.stop_all([a, b])
      Enum.each(dirs, &File.rm_rf/1)
    end)

    %{a: a, b: b}
  end

  test "a node joins by invite and calls the admin over QUIC only", %{a: a, b: b} do
    {:ok, ring} = Peers.call(a, Keyring.Ring, :create, ["ops"])
    {:ok, invite} = Peers.call(a, Keyring.Ring, :invite, [ring, [roles: ["web"]]])
    assert {:ok, ^ring} = Peers.call(b, Keyring, :join, [invite])

    :ok = Peers.call(a, Keyring, :expose, [:echo, &Function.identity/1])

    :ok =
      Peers.call(a, Keyring, :expose, [
        :nobody,
        &Function.identity/1,
        [authorize: &:erlang.is_atom/1]
      ])

    a_id = Peers.call(a, Keyring.Identity, :node_id, [])
    b_key = Peers.call(b, Keyring.Identity, :public_key, [])

    assert {:ok, %{x: [1, "two"]}} =
             Peers.call(b, Keyring, :call, [a_id, :echo, %{x: [1, "two"]}])

    assert {:error, :forbidden} = Peers.call(b, Keyring, :call, [a_id, :nobody, 1])
    assert {:error, :not_found} = Peers.call(b, Keyring, :call, [a_id, :missing, 1])
    assert Peers.call(a, Node, :list, []) == []

    # Revocation on A closes B's connection (B may still see that close:
    # {:error, :revoked}) and refuses B's next handshake.
    {:ok, _} = Peers.call(a, Keyring.Ring, :remove_member, [ring, b_key])

    assert {:error, reason} = Peers.call(b, Keyring, :call, [a_id, :echo, 1])
    assert match?({:handshake_rejected, _}, reason) or reason == :revoked

    assert {:error, {:handshake_rejected, _}} = Peers.call(b, Keyring, :call, [a_id, :echo, 2])
  end
end
