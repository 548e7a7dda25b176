defmodule Keyring.Coordinator.RoutingStrategy do
  @moduledoc """
  Picks the node that runs a routed task (`Keyring.Coordinator.route/3`).

  `pick/3` receives the healthy (`:up`) nodes that registered the capability,
  never an empty list. The default, `Keyring.Coordinator.RoutingStrategy.LeastLoaded`,
  takes the smallest run queue per scheduler, then the least memory, breaking
  ties at random.

      defmodule MyApp.PreferLocal do
        @behaviour Keyring.Coordinator.RoutingStrategy
        def pick(candidates, _capability, _task),
          do: Enum.find(candidates, hd(candidates), &(&1.node == node()))
      end

      Keyring.Coordinator.route(:transcode, job, strategy: MyApp.PreferLocal)
  """

  alias Keyring.Coordinator.Presence

  @callback pick([Presence.t(), ...], capability :: term(), task :: term()) :: Presence.t()
end

defmodule Keyring.Coordinator.RoutingStrategy.LeastLoaded do
  @moduledoc "Smallest run queue per scheduler, then least memory, ties at random."
  @behaviour Keyring.Coordinator.RoutingStrategy

  @impl true
  def pick(candidates, _capability, _task) do
    candidates
    |> Enum.shuffle()
    |> Enum.min_by(fn %{health: h} ->
      {Map.get(h, :run_queue, 0) / max(Map.get(h, :schedulers, 1), 1), Map.get(h, :memory_mb, 0)}
    end)
  end
end
