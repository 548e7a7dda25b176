defmodule Keyring.SupervisionTest do
  # Each plane is supervised on its own: a crash in the cluster plane never
  # restarts the mesh plane (which would drop every QUIC link), and the
  # other way round.
  use ExUnit.Case, async: false

  import Keyring.Test.{Eventually, Instances}

  alias Keyring.Instance

  setup do
    [a, b] = [start_instance(:a), start_instance(:b)]
    ring = ring_with(a, [b])
    eventually(fn -> key(b) in connected(a, ring) end, 10_000, "a linked to b")
    %{a: a, b: b, ring: ring}
  end

  test "killing the presence coordinator keeps every QUIC link", ctx do
    :ok = Keyring.Mesh.subscribe(instance: ctx.a)
    mesh = Process.whereis(Keyring.Mesh.Server.server(ctx.a))
    coordinator = Process.whereis(Instance.child_name(ctx.a, Keyring.Coordinator))
    Process.exit(coordinator, :kill)

    eventually(
      fn ->
        pid = Process.whereis(Instance.child_name(ctx.a, Keyring.Coordinator))
        pid && pid != coordinator
      end,
      5_000,
      "the coordinator to restart"
    )

    refute_receive {:keyring_mesh, :peer_down, _}, 1_000
    assert Process.whereis(Keyring.Mesh.Server.server(ctx.a)) == mesh
    assert key(ctx.b) in connected(ctx.a, ctx.ring)
    :ok = Keyring.expose(:echo, & &1, instance: ctx.a)
    assert {:ok, 1} = Keyring.call(id(ctx.a), :echo, 1, instance: ctx.b)

    # The restarted coordinator publishes the mesh address and keyrings again.
    [me] = Keyring.Coordinator.active_nodes(instance: ctx.a)
    assert me.keyrings == [ctx.ring]
    assert me.mesh_addr == elem(Keyring.Ring.addresses(instance: ctx.a), 0)
  end

  test "killing the mesh process leaves presence alone", ctx do
    :ok = Keyring.Coordinator.subscribe(instance: ctx.a)
    coordinator = Process.whereis(Instance.child_name(ctx.a, Keyring.Coordinator))
    Process.exit(Process.whereis(Keyring.Mesh.Server.server(ctx.a)), :kill)
    eventually(fn -> Keyring.Ring.list(instance: ctx.a) == [ctx.ring] end, 5_000, "mesh back")
    assert Process.whereis(Instance.child_name(ctx.a, Keyring.Coordinator)) == coordinator
    refute_receive {:keyring_presence, :leave, _}, 500
  end

  test "an instance stopped with a linked mesh starts again at once on its data dir", ctx do
    # The mesh (and the protocols in it) outlive the instance until the BEAM
    # collects them; they must not keep the store open. Hold on to them.
    mesh = Instance.fetch!(ctx.a, :mesh)
    dir = Path.join(System.tmp_dir!(), "#{ctx.a}")
    :ok = Supervisor.stop(ctx.a)

    for _ <- 1..3 do
      assert {:ok, pid} = Keyring.start_link(name: ctx.a, data_dir: dir)
      :ok = Supervisor.stop(pid)
    end

    assert is_reference(mesh)
  end

  test "mistyped and unknown options raise an ArgumentError naming them" do
    assert_raise ArgumentError, ~r/unknown mesh option :prot/, fn ->
      Keyring.child_spec(mesh: [prot: 1])
    end

    assert_raise ArgumentError, ~r/mesh option :port must be a non-negative integer/, fn ->
      Keyring.child_spec(mesh: [port: "4433"])
    end

    assert_raise ArgumentError, ~r/mesh option :advertise must be/, fn ->
      Keyring.child_spec(mesh: [advertise: "nowhere"])
    end

    assert_raise ArgumentError, ~r/unknown Keyring option :mesh_opts/, fn ->
      Keyring.child_spec(mesh_opts: [])
    end

    assert_raise ArgumentError, ~r/unknown expose option :scope/, fn ->
      Keyring.expose(:x, & &1, scope: :all)
    end
  end
end
