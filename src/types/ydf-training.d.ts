// The parts of ydf-training (Yggdrasil Decision Forests' training library compiled to WebAssembly) that
// flowtensor uses; the package ships no types.
declare module 'ydf-training' {
  export interface YdfModel {
    predict(columns: Record<string, number[]>): number[];
    getLabelClasses(): string[];
    describe(): string;
    save(): Promise<Blob>;
    unload(): void;
  }
  export interface YdfLearner {
    train(data: Record<string, number[] | string[]>): YdfModel;
  }
  export interface Ydf {
    RandomForestLearner: new (label: string, task: 'CLASSIFICATION' | 'REGRESSION') => YdfLearner;
    GradientBoostedTreesLearner: new (label: string, task: 'CLASSIFICATION' | 'REGRESSION') => YdfLearner;
  }
  export default function YDFTraining(opts?: { print?: (s: string) => void; printErr?: (s: string) => void }): Promise<Ydf>;
}
