defmodule Keyring.Gateway.Ops.Node do
  @moduledoc false
  # This node and the cluster plane: status, health, identity, presence, and
  # the snapshot the status page starts from.

  alias Keyring.{Coordinator, Identity, Ring, Store}
  alias Keyring.Gateway.{Args, View}
  alias Keyring.Gateway.Ops.Rings

  def health(_args, ctx) do
    # Each check is a real call into the subsystem: a hung one shows here.
    checks = %{
      "store" => check(fn -> Store.stats(instance: ctx.instance) end),
      "coordinator" => check(fn -> Coordinator.active_nodes(instance: ctx.instance) end),
      "mesh" => check(fn -> Ring.list(instance: ctx.instance) end)
    }

    ok? = Enum.all?(checks, fn {_, v} -> v == "ok" end)
    status = if ok?, do: 200, else: 503
    {:ok, status, %{"status" => if(ok?, do: "ok", else: "degraded"), "checks" => checks}}
  end

  defp check(fun) do
    fun.()
    "ok"
  rescue
    e -> "failing: " <> Exception.message(e)
  catch
    :exit, reason -> "failing: " <> inspect(reason, limit: 5)
  end

  def identity(_args, ctx) do
    {:ok,
     %{
       "node_id" => Identity.node_id(instance: ctx.instance),
       "public_key" => Base.encode16(Identity.public_key(instance: ctx.instance), case: :lower),
       "node" => Atom.to_string(node())
     }}
  end

  def status(_args, ctx), do: {:ok, status_map(ctx)}

  defp status_map(ctx) do
    me = Identity.node_id(instance: ctx.instance)

    entry =
      Enum.find(Coordinator.presence(instance: ctx.instance, include_down: true), fn {id, _} ->
        id == me
      end)

    {mesh_addr, join_addr} = Ring.addresses(instance: ctx.instance)
    store = Store.stats(instance: ctx.instance)

    %{
      "node" => %{
        "node_id" => me,
        "node" => Atom.to_string(node()),
        "version" => to_string(Application.spec(:keyring, :vsn) || "dev"),
        "incarnation" => entry && elem(entry, 1).incarnation,
        "uptime_s" => div(:erlang.statistics(:wall_clock) |> elem(0), 1000),
        "addresses" => %{"mesh" => mesh_addr, "join" => join_addr, "gateway" => ctx.url}
      },
      "health" => %{
        "run_queue" => :erlang.statistics(:total_run_queue_lengths_all),
        "processes" => :erlang.system_info(:process_count),
        "process_limit" => :erlang.system_info(:process_limit),
        "memory_mb" => div(:erlang.memory(:total), 1024 * 1024),
        "schedulers" => System.schedulers_online()
      },
      "store" => Map.new(store, fn {k, v} -> {Atom.to_string(k), v} end),
      "gateway" => Map.new(ctx.stats.(), fn {k, v} -> {Atom.to_string(k), v} end)
    }
  end

  def presence(args, ctx) do
    include_down = Args.boolean(args, "include_down", true)
    me = Identity.node_id(instance: ctx.instance)

    nodes =
      Coordinator.presence(instance: ctx.instance, include_down: include_down)
      |> Map.values()
      |> Enum.sort_by(& &1.node_id)
      |> Enum.map(&View.presence(&1, me))

    {:ok, %{"nodes" => nodes}}
  end

  @doc "Everything the status page draws, in one answer."
  def mesh(args, ctx) do
    {:ok, %{"nodes" => nodes}} = presence(args, ctx)
    {:ok, %{"keyrings" => rings}} = Rings.list(%{}, ctx)
    me = Identity.node_id(instance: ctx.instance)

    links =
      for ring <- rings, m <- ring["members"], m["online"], not m["self"] do
        %{"keyring" => ring["id"], "from" => me, "to" => m["node_id"]}
      end

    {:ok,
     %{
       "self" => status_map(ctx)["node"],
       "nodes" => nodes,
       "keyrings" => rings,
       "links" => links,
       "transfers" => transfers_map(ctx)
     }}
  end

  @doc "Content sync transfers (`Keyring.Sync.transfers/1`), running and recent."
  def transfers(_args, ctx), do: {:ok, transfers_map(ctx)}

  defp transfers_map(ctx) do
    list = Keyring.Sync.transfers(instance: ctx.instance)
    running = Enum.count(list, &(&1.stage == :running))

    message =
      case list do
        [] -> "no transfers yet"
        _ -> "#{length(list)} transfers, #{running} running"
      end

    %{
      "available" => true,
      "message" => message,
      "transfers" => Enum.map(list, &View.transfer/1)
    }
  catch
    :exit, _ -> %{"available" => false, "message" => "content sync is not running"}
  end
end
