defmodule Keyring.Cluster.MeshReconnectTest do
  # Two real VMs, not connected by Erlang distribution. One dies without a
  # goodbye and comes back on its port: the survivor notices by its idle
  # timeout and dials it again by itself.
  use ExUnit.Case, async: false
  @moduletag :cluster

  alias Keyring.Test.{Peers, Ports}
  import Keyring.Test.Eventually

  test "a member VM killed without a goodbye is dialled again when it returns" do
    u = "#{System.os_time(:nanosecond)}_#{System.unique_integer([:positive])}"
    dirs = for n <- [:a, :b], do: Path.join(System.tmp_dir!(), "keyring-redial-#{n}-#{u}")
    # Short liveness settings so the loss shows within seconds.
    mesh = fn port -> [mesh: [port: port, keep_alive_ms: 300, idle_timeout_ms: 1_500]] end
    b_port = Ports.free_udp()
    a = Peers.start(:"redial_a_#{u}", dir: Enum.at(dirs, 0), instance_opts: mesh.(0))
    b = Peers.start(:"redial_b_#{u}", dir: Enum.at(dirs, 1), instance_opts: mesh.(b_port))

    on_exit(fn ->
      Peers.stop_all([a, b])
      Enum.each(dirs, &File.rm_rf/1)
    end)

    {:ok, ring} = Peers.call(a, Keyring.Ring, :create, ["ops"])
    {:ok, invite} = Peers.call(a, Keyring.Ring, :invite, [ring])
    assert {:ok, ^ring} = Peers.call(b, Keyring, :join, [invite])
    b_key = Peers.call(b, Keyring.Identity, :public_key, [])
    connected? = fn -> b_key in Peers.call(a, Keyring.Ring, :connected, [ring]) end
    eventually(connected?, 20_000, "A linked to B")

    Peers.kill(b)
    eventually(fn -> not connected?.() end, 20_000, "A to notice B is gone")

    # Same data dir (identity, keyring) and port; nobody calls anybody.
    b = Peers.start(:"redial_b2_#{u}", dir: Enum.at(dirs, 1), instance_opts: mesh.(b_port))
    on_exit(:b_again, fn -> Peers.stop(b) end)
    eventually(connected?, 20_000, "A to dial B again")
    a_key = Peers.call(a, Keyring.Identity, :public_key, [])
    assert a_key in Peers.call(b, Keyring.Ring, :connected, [ring])
  end
end
