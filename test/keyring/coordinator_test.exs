defmodule Keyring.CoordinatorTest do
  use ExUnit.Case, async: true

  alias Keyring.Coordinator
  alias Keyring.Coordinator.Presence

  setup do
    name = :"CoordTest#{System.unique_integer([:positive])}"
    dir = Keyring.Test.TmpDir.new("kr-coord")
    {:ok, instance: name, dir: dir}
  end

  defp start(ctx, opts \\ []) do
    start_supervised!({Keyring, [name: ctx.instance, data_dir: ctx.dir] ++ opts})
  end

  test "a node sees itself, with identity, incarnation and health", ctx do
    start(ctx)
    assert [%Presence{} = me] = Coordinator.active_nodes(instance: ctx.instance)
    assert me.node == node()
    assert me.node_id == Keyring.Identity.node_id(instance: ctx.instance)
    assert me.incarnation == 1
    assert me.status == :up
    assert %{run_queue: _, memory_mb: _, schedulers: _, started_at: _} = me.health
    assert is_integer(Presence.uptime_s(me))
    assert Coordinator.presence(instance: ctx.instance) == %{me.node_id => me}
    assert inspect(me) =~ "#Keyring.Coordinator.Presence<"
  end

  test "the incarnation goes up on every start with the same data dir", ctx do
    start(ctx)
    stop_supervised!(ctx.instance)
    start(ctx)
    assert [%Presence{incarnation: 2}] = Coordinator.active_nodes(instance: ctx.instance)
  end

  test "registered capabilities are published and routable locally", ctx do
    start(ctx)
    :ok = Coordinator.register(:double, fn x -> 2 * x end, instance: ctx.instance)
    :ok = Coordinator.register({:model, "m"}, {Kernel, :+, [1]}, instance: ctx.instance)
    [me] = Coordinator.active_nodes(instance: ctx.instance)
    assert Enum.sort(me.capabilities) == Enum.sort([:double, {:model, "m"}])
    assert Coordinator.route(:double, 21, instance: ctx.instance) == {:ok, 42}
    assert Coordinator.route({:model, "m"}, 1, instance: ctx.instance) == {:ok, 2}
    assert Coordinator.route(:triple, 1, instance: ctx.instance) == {:error, :no_capability}
    :ok = Coordinator.unregister(:double, instance: ctx.instance)
    assert Coordinator.route(:double, 1, instance: ctx.instance) == {:error, :no_capability}
  end

  test "bad arguments raise ArgumentError", ctx do
    start(ctx)

    assert_raise ArgumentError, fn ->
      Coordinator.register(:x, :not_a_handler, instance: ctx.instance)
    end

    assert_raise ArgumentError, fn ->
      Coordinator.route(:x, 1, instance: ctx.instance, bogus: 1)
    end

    assert_raise ArgumentError, fn ->
      Coordinator.active_nodes(instance: :"NoSuchKeyring#{System.unique_integer()}")
    end

    assert_raise ArgumentError, fn ->
      Keyring.start_link(name: :bad_hb, data_dir: ctx.dir, coordinator: [heartbeat: 0])
    end

    assert_raise ArgumentError, fn ->
      Keyring.start_link(name: :bad_opt, data_dir: ctx.dir, coordinator: [nope: 1])
    end
  end

  test "libcluster strategy names are accepted; unknown strategies are refused", ctx do
    topo = [
      t: [strategy: Cluster.Strategy.Epmd, config: [hosts: [:"nobody@127.0.0.1"], interval: 50]]
    ]

    start(ctx, cluster_topologies: topo)

    assert [{{Keyring.Cluster.Strategy.Epmd, :t}, pid, :worker, _}] =
             Supervisor.which_children(Module.concat(ctx.instance, Cluster))

    assert is_pid(pid)

    assert_raise ArgumentError, fn ->
      Keyring.Cluster.init(instance: ctx.instance, topologies: [x: [strategy: NoSuchStrategy]])
    end
  end
end
