defmodule Keyring.Cluster.ReconcileTest do
  # Two VMs, not connected by Erlang distribution: set reconciliation of the
  # blobs shared in a keyring goes over the QUIC mesh only.
  use ExUnit.Case, async: false
  @moduletag :cluster

  alias Keyring.Test.Peers

  setup do
    u = "#{System.os_time(:nanosecond)}_#{System.unique_integer([:positive])}"
    dirs = for n <- [:a, :b], do: Path.join(System.tmp_dir!(), "keyring-recon-#{n}-#{u}")

    [a, b] =
      for {n, dir} <- Enum.zip([:a, :b], dirs), do: Peers.start(:"recon_#{n}_#{u}", dir: dir)

    on_exit(fn ->
      Peers.stop_all([a, b])
      Enum.each(dirs, &File.rm_rf/1)
    end)

    {:ok, ring} = Peers.call(a, Keyring.Ring, :create, ["shared"])
    {:ok, invite} = Peers.call(a, Keyring.Ring, :invite, [ring])
    {:ok, ^ring} = Peers.call(b, Keyring, :join, [invite])
    %{a: a, b: b, ring: ring}
  end

  defp put(peer, i, opts), do: Peers.call(peer, Keyring.Store, :put, ["blob #{i}", opts])

  test "each side learns exactly what it shares that the other lacks, and the reverse",
       %{a: a, b: b, ring: ring} do
    a_only = for i <- 1..10, do: elem(put(a, i, share: ring), 1)
    for i <- 11..200, do: {:ok, _} = put(a, i, share: ring)
    for i <- 11..200, do: {:ok, _} = put(b, i, share: ring)
    b_only = for i <- 201..205, do: elem(put(b, i, share: ring), 1)
    # Held but not shared in the keyring: not part of the set.
    {:ok, _} = put(a, 999, [])

    a_id = Peers.call(a, Keyring.Identity, :node_id, [])
    assert {:ok, diff} = Peers.call(b, Keyring.Mesh, :reconcile, [a_id, ring])
    assert Enum.sort(diff.have) == Enum.sort(b_only)
    assert Enum.sort(diff.need) == Enum.sort(a_only)
    assert diff.items == 195
    assert diff.round_trips <= 3
  end
end
