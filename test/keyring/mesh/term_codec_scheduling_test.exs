defmodule Keyring.Mesh.TermCodecSchedulingTest do
  # Issue 8, item 8: a body just under 256 KiB was decoded on a normal
  # scheduler for 10-35 ms. Now a normal-scheduler call stops after 1,000
  # values or 256 KiB copied and hands the document to a dirty scheduler.
  #
  # Measured: the documents that cost most per call while staying under the
  # bounds (the costliest values, each kind), encoded and decoded 200 times
  # each on a normal scheduler; the 99th percentile must stay under 1 ms.
  #
  # How: in a VM with ONE normal scheduler (+S 1:1, no busy-waiting), each
  # sample is the shortest wall time of three back-to-back calls: on a
  # loaded 2-core box the OS takes the core away for 4-8 ms at a time, which
  # no NIF can avoid, but rarely three times running, so the minimum is what
  # the call itself holds the scheduler for. (The scheduler thread's CPU
  # time from /proc/self/task/TID/schedstat is printed too; it is only
  # updated at context switches and ticks, so under load it lags and cannot
  # be asserted on.)
  use ExUnit.Case, async: false

  alias Keyring.Mesh.TermCodec
  alias Keyring.Test.DistPeer

  @moduletag :linux_proc
  @runs 200

  {:module, _, probe_bin, _} =
    defmodule Probe do
      @moduledoc false
      # Runs in the measured VM (loaded as a binary: test modules have no
      # .beam file on disk).

      def scheduler_cpu_ns_fun do
        [task] =
          for t <- Path.wildcard("/proc/self/task/*"),
              File.read!(t <> "/comm") =~ "1_scheduler",
              do: t

        stat = task <> "/schedstat"
        fn -> stat |> File.read!() |> String.split() |> hd() |> String.to_integer() end
      end

      # {cpu_ns, wall_ns} of each of `runs` calls of `fun`, after a warm-up.
      def measure(fun, runs) do
        cpu = scheduler_cpu_ns_fun()
        for _ <- 1..10, do: fun.()

        for _ <- 1..runs do
          c0 = cpu.()

          wall =
            for _ <- 1..3 do
              w0 = System.monotonic_time(:nanosecond)
              fun.()
              System.monotonic_time(:nanosecond) - w0
            end

          {div(cpu.() - c0, 3), Enum.min(wall)}
        end
      end

      def measure_decode(bytes, runs),
        do: measure(fn -> {:ok, _} = Keyring.Native.term_decode(bytes) end, runs)

      def measure_encode(term, runs),
        do: measure(fn -> {:ok, _} = Keyring.Native.term_encode(term) end, runs)
    end

  @probe_bin probe_bin

  setup_all do
    flags = ~w(+S 1:1 +sbwt none +sbwtdcpu none +sbwtdio none)
    peer = DistPeer.boot(flags)

    {:module, Probe} =
      DistPeer.call(peer, :code, :load_binary, [Probe, ~c"probe.beam", @probe_bin])

    on_exit(fn -> DistPeer.stop(peer) end)
    # The long atom must exist there: decoding never creates atoms.
    DistPeer.call(peer, String, :to_atom, [String.duplicate("k", 255)])
    %{peer: peer}
  end

  # The costliest documents that still run on the normal scheduler: every
  # kind of value, at the value bound (counting the container), or the
  # copy bound.
  defp worst_under_the_bounds do
    {values, copied} = TermCodec.normal_bounds()
    n = values - 1
    long_atom = String.to_atom(String.duplicate("k", 255))

    [
      atoms: List.duplicate(:ok, n),
      long_atoms: List.duplicate(long_atom, div(copied, 16 * 255)),
      integers: Enum.to_list(-n..-1),
      floats: Enum.map(1..n, &(&1 * 1.5)),
      heap_binaries: Enum.map(1..n, &:binary.copy(<<&1>>, 64)),
      refc_binaries: Enum.map(1..div(copied, 1024 + 65), &:binary.copy(<<&1>>, 65)),
      copied_binaries: List.duplicate(:binary.copy("x", 4095), div(copied, 4095 + 1024)),
      map_of_integers: Map.new(1..div(n, 2), &{&1, &1}),
      map_of_binaries: Map.new(1..div(n, 2), &{"key #{&1}", "value"}),
      tuples: List.duplicate({1, :ok}, div(n, 3)),
      nested: Enum.reduce(1..60, Enum.to_list(1..(n - 60)), fn _, acc -> [acc] end)
    ]
  end

  defp p99(samples), do: samples |> Enum.sort() |> Enum.at(round(length(samples) * 0.99) - 1)

  test "every call on a normal scheduler holds it for less than 1 ms (p99)", ctx do
    report =
      for {kind, term} <- worst_under_the_bounds(), op <- [:decode, :encode] do
        assert {:ok, bytes} = Keyring.Native.term_encode(term)
        assert {:ok, ^term} = Keyring.Native.term_decode(bytes)

        samples =
          case op do
            :decode -> DistPeer.call(ctx.peer, Probe, :measure_decode, [bytes, @runs], 120_000)
            :encode -> DistPeer.call(ctx.peer, Probe, :measure_encode, [term, @runs], 120_000)
          end

        {cpu, wall} = Enum.unzip(samples)
        {kind, op, byte_size(bytes), p99(cpu), p99(wall)}
      end

    IO.puts("\nterm codec on a normal scheduler, p99 over #{@runs} samples (µs): cpu / wall")

    for {kind, op, size, cpu, wall} <- report,
        do: IO.puts("  #{kind} #{op} (#{size} B): #{div(cpu, 1000)} / #{div(wall, 1000)}")

    for {kind, op, _size, _cpu, wall} <- report do
      assert wall < 1_000_000, "#{kind} #{op}: p99 #{wall} ns on the scheduler"
    end
  end

  test "a document over a bound costs a normal scheduler a bounded try, then runs dirty" do
    {values, copied} = TermCodec.normal_bounds()

    for term <- [
          Enum.to_list(1..(values * 50)),
          List.duplicate(:binary.copy("x", 1024), div(copied, 1024) * 4)
        ] do
      {:ok, bytes} = TermCodec.encode(term)
      assert {:error, :dirty} = Keyring.Native.term_encode(term)
      assert {:error, :dirty} = Keyring.Native.term_decode(bytes)
      {micros, {:error, :dirty}} = :timer.tc(fn -> Keyring.Native.term_decode(bytes) end)
      # Wall time, generous: the try stops at the bound, whatever the size.
      assert micros < 20_000
      assert {:ok, ^term} = TermCodec.decode(bytes)
    end
  end
end
